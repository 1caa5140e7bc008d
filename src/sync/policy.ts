import { createHash } from 'node:crypto';

/**
 * A device's place in a staged rollout, in [0, 100): a stable hash of device id, channel and
 * model. The same device is always in the same place for a model, so raising a rollout from
 * 20% to 50% keeps the first 20% and adds more; different models pick different devices.
 */
export function rolloutBucket(deviceId: string, channel: string, model: string): number {
  const digest = createHash('sha256').update(`${deviceId}\0${channel}\0${model}`).digest();
  return (digest.readUInt32BE(0) / 2 ** 32) * 100;
}

/** Whether a device takes part in a release rolled out to `percent` of the fleet. */
export function inRollout(percent: number, deviceId: string, channel: string, model: string): boolean {
  if (percent >= 100) return true;
  if (percent <= 0) return false;
  return rolloutBucket(deviceId, channel, model) < percent;
}

/**
 * Order two versions: semver-like (numeric dot-separated parts compared as numbers, a
 * pre-release `-rc.1` before the release, build metadata `+…` ignored); parts that are not
 * numbers compare as text. Negative when a < b.
 */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const core = v.split('+')[0];
    const dash = core.indexOf('-');
    return dash < 0 ? { main: core, pre: '' } : { main: core.slice(0, dash), pre: core.slice(dash + 1) };
  };
  const x = split(a);
  const y = split(b);
  const main = compareParts(x.main.split('.'), y.main.split('.'));
  if (main !== 0) return main;
  if (x.pre === y.pre) return 0;
  if (!x.pre) return 1; // 1.0.0 > 1.0.0-rc.1
  if (!y.pre) return -1;
  return compareParts(x.pre.split('.'), y.pre.split('.'));
}

function compareParts(a: string[], b: string[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const p = a[i];
    const q = b[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) {
      const d = Number(p) - Number(q);
      if (d !== 0) return Math.sign(d);
    } else if (pn !== qn) {
      return pn ? -1 : 1; // numeric identifiers sort before text ones (semver §11)
    } else if (p !== q) {
      return p < q ? -1 : 1;
    }
  }
  return 0;
}
