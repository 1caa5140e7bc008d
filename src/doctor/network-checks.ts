import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { redact } from '../transport/index.js';
import { redactText, redactUrl } from '../util/redact.js';
import type { Check } from './types.js';

/** Connect with the config's URL, TLS files and credentials; the embedded broker's port must be free (or held by a running daemon). */
export const broker: Check = {
  id: 'broker',
  title: 'MQTT broker reachable',
  async run({ config, timeoutMs }) {
    const b = config.broker;
    if (!b.url) {
      const free = await portFree(b.host, b.port);
      return free
        ? { status: 'ok', detail: `embedded broker (aedes); ${b.host}:${b.port} is free to listen on` }
        : { status: 'warn', detail: `embedded broker: ${b.host}:${b.port} is in use`, hint: 'a running daemon holds it (fine), or another broker does: set broker.url or broker.port' };
    }
    const mqtt = await import('mqtt');
    const read = (f?: string) => (f ? readFileSync(f) : undefined);
    let client: import('mqtt').MqttClient | undefined;
    try {
      client = await mqtt.connectAsync(b.url, {
        username: b.username,
        password: b.password,
        ca: read(b.ca),
        cert: read(b.cert),
        key: read(b.key),
        rejectUnauthorized: b.rejectUnauthorized,
        protocolVersion: b.protocolVersion,
        connectTimeout: timeoutMs,
        reconnectPeriod: 0,
        clientId: `edgeloop-doctor-${process.pid}`,
      });
      return { status: 'ok', detail: `connected to ${redact(b.url)} (MQTT ${b.protocolVersion === 5 ? '5' : '3.1.1'}${b.url.startsWith('mqtts') ? ', TLS' : ''}${b.username ? `, as ${b.username}` : ''})` };
    } catch (err) {
      return {
        status: 'fail',
        detail: `cannot connect to ${redact(b.url)}: ${(err as Error).message}`,
        hint: 'check broker.url, that the broker runs and the network/firewall, TLS files (broker.ca/cert/key) and credentials',
      };
    } finally {
      client?.end(true);
    }
  },
};

/** The HTTP listener's port, when the config has one. */
export const httpPort: Check = {
  id: 'http-port',
  title: 'HTTP port',
  async run({ config }) {
    const httpConfig = (config as unknown as { http?: { port?: number; host?: string } }).http;
    if (httpConfig?.port === undefined) return { status: 'skip', detail: 'no HTTP listener configured' };
    const host = httpConfig.host ?? '127.0.0.1';
    const free = await portFree(host, httpConfig.port);
    return free
      ? { status: 'ok', detail: `${host}:${httpConfig.port} is free to listen on` }
      : { status: 'warn', detail: `${host}:${httpConfig.port} is in use`, hint: 'a running daemon holds it (fine), or another program does: change http.port' };
  },
};

/** The release repository answers for the configured channel. */
export const releaseRepository: Check = {
  id: 'release-repository',
  title: 'release repository reachable',
  async run({ config, timeoutMs }) {
    const sync = config.sync;
    if (!sync) return { status: 'skip', detail: 'fleet sync is off (no sync section)' };
    const target = `${sync.repoUrl.replace(/\/+$/, '')}/channels/${encodeURIComponent(sync.channel)}.json`;
    const url = redactUrl(target); // what is shown
    try {
      const status = await head(target, timeoutMs, sync.ca ? readFileSync(sync.ca) : undefined);
      if (status === 200) return { status: 'ok', detail: `${url} answers 200` };
      if (status === 404) return { status: 'fail', detail: `${url} answers 404`, hint: `channel '${sync.channel}' is not published there: check sync.channel and sync.repoUrl` };
      return { status: 'fail', detail: `${url} answers ${status}`, hint: 'check the web server serving the release repository' };
    } catch (err) {
      return { status: 'fail', detail: `${url}: ${redactText((err as Error).message)}`, hint: 'check sync.repoUrl, the network, and sync.ca for a private CA' };
    }
  },
};

function portFree(host: string, port: number): Promise<boolean> {
  if (port === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** HEAD (a GET body is not needed) with a plain timer as the bound. */
function head(url: string, timeoutMs: number, ca?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.request(url, { method: 'HEAD', ca, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}
