import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (f: string) => readFileSync(new URL(`../${f}`, import.meta.url), 'utf8');

describe('deployment', () => {
  it('runs the daemon with the same node flags under npm start and systemd (the benchmarks measure those)', () => {
    const start = JSON.parse(read('package.json')).scripts.start as string;
    const startFlags = /^node\s+(.*?)\s*bin\/edgeloop\.js serve( --device-id \S+)?$/.exec(start)?.[1];
    expect(startFlags).toMatch(/--max-semi-space-size=\d+/);
    const exec = read('deploy/edgeloop.service').split('\n').find((l) => l.startsWith('ExecStart='))!;
    expect(exec).toContain(`/usr/bin/node ${startFlags} /opt/edgeloop/bin/edgeloop.js serve`);
  });
});

describe('systemd unit', () => {
  it('is Type=notify with a watchdog, accepting notifications from the main process only', () => {
    const unit = read('deploy/edgeloop.service').split('\n');
    expect(unit).toContain('Type=notify');
    expect(unit).toContain('NotifyAccess=main');
    expect(unit).toContain('WatchdogSec=30');
    expect(unit.some((l) => l.startsWith('Type=simple'))).toBe(false);
  });
});
