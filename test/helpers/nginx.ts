import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, promises as fs, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './mosquitto.js';

/** One line of the access log. */
export interface AccessEntry {
  status: number;
  method: string;
  path: string;
  /** The Range request header, '' when none. */
  range: string;
  ifNoneMatch: string;
  bytesSent: number;
}

export interface Nginx {
  port: number;
  url: string;
  root: string;
  /** Start (again) on the same port; limitRate (e.g. '100k') throttles /blobs/ per connection. */
  start(opts?: { limitRate?: string }): Promise<void>;
  /** Fast shutdown (SIGTERM): open connections are cut, as a crashing server would. */
  stop(): Promise<void>;
  accessLog(): Promise<AccessEntry[]>;
}

/**
 * A real nginx (Debian's package, installed by .ci/run) serving `root` as a static release
 * repository on a free loopback port, with its own prefix, pid, error log and access log.
 */
export async function startNginx(root: string, opts: { limitRate?: string } = {}): Promise<Nginx> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-nginx-'));
  for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, 'tmp', t), { recursive: true });
  const accessLog = path.join(dir, 'access.log');
  let child: ChildProcess | undefined;

  const writeConfig = (limitRate?: string) => {
    // As root, workers would switch to 'nobody' and lose access to the test's private folders.
    const user = process.getuid?.() === 0 ? 'user root;\n' : '';
    writeFileSync(
      path.join(dir, 'nginx.conf'),
      `${user}daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  log_format edgeloop '$status "$request_method $uri" range="$http_range" inm=$http_if_none_match sent=$body_bytes_sent';
  access_log ${accessLog} edgeloop;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  types { application/json json; }
  default_type application/octet-stream;
  sendfile off;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location /blobs/ { ${limitRate ? `limit_rate ${limitRate};` : ''} }
  }
}
`,
    );
  };

  const server: Nginx = {
    port,
    url: `http://127.0.0.1:${port}`,
    root,
    async start(o = {}) {
      writeConfig(o.limitRate);
      child = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], { stdio: 'ignore' });
      await waitForPort(port);
    },
    stop() {
      const c = child;
      return new Promise<void>((resolve) => {
        if (!c || c.exitCode !== null) return resolve();
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      });
    },
    async accessLog() {
      const text = await fs.readFile(accessLog, 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const m = /^(\d+) "(\S+) (\S+)" range="([^"]*)" inm=(\S*) sent=(\d+)$/.exec(line);
          if (!m) throw new Error(`unexpected access log line: ${line}`);
          return { status: Number(m[1]), method: m[2], path: m[3], range: m[4] === '-' ? '' : m[4], ifNoneMatch: m[5] === '-' ? '' : m[5], bytesSent: Number(m[6]) };
        });
    },
  };
  await server.start(opts);
  return server;
}
