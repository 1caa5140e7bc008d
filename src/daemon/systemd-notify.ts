import { createRequire } from 'node:module';
import type { Logger } from 'pino';

/*
 * sd_notify(3) client: READY=1, STOPPING=1, STATUS=..., WATCHDOG=1 as datagrams to $NOTIFY_SOCKET.
 *
 * Why `unix-dgram` (an optional native dependency): Node has no AF_UNIX SOCK_DGRAM socket
 * (node:dgram is UDP only, node:net is stream only), and the alternatives do not hold up:
 * - spawning `systemd-notify` sends from a child PID, which systemd drops under
 *   NotifyAccess=main (and forging the main PID in SCM_CREDENTIALS needs CAP_SYS_ADMIN);
 * - `sd-notify` / `sd-daemon` bind libsystemd and need its headers at build time;
 * - an FFI package (koffi) ships prebuilt binaries for every platform (tens of MB) for one sendto().
 * `unix-dgram` is a few hundred lines of C (nan) that builds with the same toolchain as
 * better-sqlite3, and is widely used (syslog transports). When it is missing the daemon runs
 * unchanged and logs that systemd will not hear from it.
 * Abstract-namespace sockets ('@...') are not supported by unix-dgram; systemd gives services a
 * path (/run/systemd/notify), so that is what matters.
 */

/** Sends one datagram to a unix socket path; injectable so the notifier can be driven without systemd. */
export interface DatagramSender {
  send(path: string, message: Buffer): Promise<void>;
  close(): void;
}

/** What the daemon tells systemd. Every method is a no-op when not run by systemd. */
export interface SystemdNotifier {
  /** True when $NOTIFY_SOCKET was set and a sender could be made. */
  readonly enabled: boolean;
  /** Watchdog ping interval in ms (half of $WATCHDOG_USEC), or null when systemd set no watchdog. */
  readonly watchdogIntervalMs: number | null;
  ready(status?: string): Promise<void>;
  stopping(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  /** Stop the watchdog timer and close the socket. */
  close(): void;
}

export interface SystemdNotifyOptions {
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Defaults to a unix-dgram socket. */
  sender?: DatagramSender;
  pid?: number;
}

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  close(): void;
}

/** The default sender; null when the optional `unix-dgram` module is not installed or did not build. */
export function unixDgramSender(): DatagramSender | null {
  let mod: { createSocket(type: 'unix_dgram'): UnixDgramSocket };
  try {
    mod = createRequire(import.meta.url)('unix-dgram');
  } catch {
    return null;
  }
  const socket = mod.createSocket('unix_dgram');
  socket.on('error', () => undefined); // errors reach send()'s callback
  return {
    send: (path, message) =>
      new Promise((resolve, reject) => socket.send(message, 0, message.length, path, (err) => (err ? reject(err) : resolve()))),
    close: () => socket.close(),
  };
}

const disabled: SystemdNotifier = {
  enabled: false,
  watchdogIntervalMs: null,
  ready: async () => undefined,
  stopping: async () => undefined,
  status: async () => undefined,
  close: () => undefined,
};

/**
 * A notifier for this process. Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, removes
 * them from process.env (as sd_notify's unset_environment does) so child processes such as the
 * trainer do not speak for the daemon, and starts the watchdog: WATCHDOG=1 every half interval
 * from an event-loop timer, so a stalled loop stops the pings and systemd restarts the service.
 */
export function createSystemdNotifier(opts: SystemdNotifyOptions = {}): SystemdNotifier {
  const env = opts.env ?? process.env;
  const socketPath = env.NOTIFY_SOCKET;
  const watchdogUsec = Number(env.WATCHDOG_USEC);
  const watchdogPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : undefined;
  if (env === process.env) for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete process.env[k];
  if (!socketPath) return disabled;
  if (socketPath.startsWith('@')) {
    opts.log?.warn({ socket: socketPath }, 'abstract NOTIFY_SOCKET is not supported; systemd will not hear from edgeloop');
    return disabled;
  }
  const sender = opts.sender ?? unixDgramSender();
  if (!sender) {
    opts.log?.warn('NOTIFY_SOCKET is set but the optional unix-dgram module is missing; systemd will not hear from edgeloop');
    return disabled;
  }
  const send = async (message: string): Promise<void> => {
    try {
      await sender.send(socketPath, Buffer.from(message));
    } catch (err) {
      opts.log?.warn({ err, socket: socketPath }, 'sd_notify failed');
    }
  };
  const forUs = watchdogPid === undefined || watchdogPid === (opts.pid ?? process.pid);
  const intervalMs = Number.isFinite(watchdogUsec) && watchdogUsec > 0 && forUs ? Math.max(1, Math.floor(watchdogUsec / 2000)) : null;
  let timer: NodeJS.Timeout | undefined;
  if (intervalMs !== null) {
    timer = setInterval(() => void send('WATCHDOG=1'), intervalMs);
    timer.unref(); // the watchdog must never keep a stopping process alive
  }
  const withStatus = (line: string, status?: string) => (status ? `${line}\nSTATUS=${status.replace(/\n/g, ' ')}` : line);
  return {
    enabled: true,
    watchdogIntervalMs: intervalMs,
    ready: (status) => send(withStatus(`READY=1\nMAINPID=${opts.pid ?? process.pid}`, status)),
    stopping: (status) => send(withStatus('STOPPING=1', status)),
    status: (text) => send(withStatus('', text).trimStart()),
    close: () => {
      if (timer) clearInterval(timer);
      sender.close();
    },
  };
}
