import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

/** A throw-away CA and a server certificate for 127.0.0.1, made with openssl. */
function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=edgeloop-test-ca', '-keyout', f('ca.key'), '-out', f('ca.crt'));
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'));
  execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > ${f('san.ext')}`]);
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('san.ext'), '-out', f('server.crt'));
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}

describe('external broker with TLS and credentials', () => {
  let mosquitto: Mosquitto;
  let d: RunningDaemon;
  let ca: string;

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-tls-'));
    const certs = makeCerts(dir);
    ca = certs.ca;
    const pw = path.join(dir, 'passwords');
    execFileSync('mosquitto_passwd', ['-b', '-c', pw, 'device', 's3cret']);
    mosquitto = await startMosquitto(undefined, `cafile ${certs.ca}\ncertfile ${certs.cert}\nkeyfile ${certs.key}\nallow_anonymous false\npassword_file ${pw}`);
    d = await startDaemon({ broker: `mqtts://127.0.0.1:${mosquitto.port}`, config: { broker: { ca, username: 'device', password: 's3cret' } } });
  });
  afterAll(async () => {
    await d?.stop();
    await mosquitto?.stop();
  });

  it('serves over mqtts:// with a CA and a password', async () => {
    const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${mosquitto.port}`, { ca: readFileSync(ca), username: 'device', password: 's3cret', protocolVersion: 5 });
    try {
      const reply = await new Promise<{ predictions: { label: string }[] }>((resolve) => {
        client.on('message', (_t, p) => resolve(JSON.parse(p.toString())));
        void client.subscribeAsync('tls/replies').then(() =>
          client.publishAsync(d.infer('digits'), JSON.stringify({ inputs: digitsSample.rows[4] }), { properties: { responseTopic: 'tls/replies' } }),
        );
      });
      expect(Number(reply.predictions[0].label)).toBe(digitsSample.labels[4]);
    } finally {
      await client.endAsync();
    }
  });

  it('refuses to start with wrong credentials, saying why', async () => {
    await expect(startDaemon({ broker: `mqtts://127.0.0.1:${mosquitto.port}`, config: { broker: { ca, username: 'device', password: 'wrong' } } })).rejects.toMatchObject({
      code: 'EDGELOOP_BROKER_UNREACHABLE',
      message: expect.stringMatching(/not authori[sz]ed|bad user name or password/i),
    });
  });
});

describe('shared subscription', () => {
  let mosquitto: Mosquitto;
  const daemons: RunningDaemon[] = [];
  beforeAll(async () => {
    mosquitto = await startMosquitto();
    for (let i = 0; i < 2; i++) daemons.push(await startDaemon({ broker: mosquitto.url, deviceId: 'shared-dev', config: { broker: { sharedGroup: 'pool' } } }));
  });
  afterAll(async () => {
    for (const d of daemons) await d.stop();
    await mosquitto?.stop();
  });

  it('splits requests between daemons, each answered exactly once', async () => {
    const client = await TestClient.connect(mosquitto.url, 5);
    const seen = new Map<string, number>();
    client.client.on('message', (_t, _p, packet) => {
      const id = packet.properties?.correlationData?.toString() ?? '';
      seen.set(id, (seen.get(id) ?? 0) + 1);
    });
    try {
      const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => client.request(daemons[0].infer('digits'), { inputs: digitsSample.rows[i % 20] })));
      replies.forEach((r, i) => expect(Number(r.predictions![0].label)).toBe(digitsSample.labels[i % 20]));
      await new Promise((r) => setTimeout(r, 200));
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
      const served = daemons.map((d) => d.daemon.servedModels().get('digits')!.stats.requests);
      expect(served[0] + served[1]).toBeGreaterThanOrEqual(100);
      expect(Math.min(...served)).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });
});
