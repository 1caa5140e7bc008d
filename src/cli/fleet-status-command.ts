import type { Command } from 'commander';
import { EdgeloopError } from '../errors.js';
import { fail, table } from './output.js';

/** One device as the fleet view shows it, from its retained status document (fields may be absent on older daemons). */
export interface FleetDevice {
  deviceId: string;
  online: boolean;
  /** Why offline ('connection lost' from the will, or the stop reason). */
  reason: string | null;
  since: string | null;
  edgeloop: string | null;
  channel: string | null;
  models: { name: string; version: string; state: string; drift: boolean; accuracyAlert: boolean; liveAccuracy: number | null; sync: string | null }[];
  /** Models on trial. */
  trials: string[];
  /** Models with an open drift alert. */
  driftAlerts: string[];
  /** Models with an open live-accuracy alert. */
  accuracyAlerts: string[];
  /** The newest sync result among the models ('installed 1.2.0', 'rejected ... [CODE]'), or null. */
  lastSync: string | null;
}

type Doc = Record<string, any>;

/** Reduce a retained status document to a fleet row; tolerant of missing and null fields. */
export function fleetRow(topicDevice: string, doc: Doc): FleetDevice {
  const models = (Array.isArray(doc.models) ? doc.models : []).map((m: Doc) => {
    const sync = m.sync && typeof m.sync === 'object' ? m.sync : null;
    return {
      name: String(m.name ?? '?'),
      version: String(m.version ?? '?'),
      state: String(m.state ?? 'active'),
      drift: Boolean(m.drift?.alert),
      accuracyAlert: Boolean(m.accuracyAlert ?? m.liveAccuracy?.alert),
      liveAccuracy: typeof m.liveAccuracy === 'number' ? m.liveAccuracy : typeof m.liveAccuracy?.accuracy === 'number' ? m.liveAccuracy.accuracy : null,
      sync: sync ? `${sync.outcome} ${sync.version}${sync.code ? ` [${sync.code}]` : ''}` : null,
      syncAt: sync?.at ? String(sync.at) : '',
    };
  });
  const newest = [...models].filter((m) => m.sync).sort((a, b) => b.syncAt.localeCompare(a.syncAt))[0];
  return {
    deviceId: String(doc.deviceId ?? topicDevice),
    online: doc.online === true,
    reason: doc.online === true ? null : (doc.reason ?? null),
    since: doc.since ?? doc.at ?? null,
    edgeloop: doc.edgeloop ?? null,
    channel: doc.sync?.channel ?? null,
    models: models.map(({ syncAt: _at, ...m }: { syncAt: string }) => m) as FleetDevice['models'],
    trials: models.filter((m: { state: string }) => m.state === 'trial').map((m: { name: string }) => m.name),
    driftAlerts: models.filter((m: { drift: boolean }) => m.drift).map((m: { name: string }) => m.name),
    accuracyAlerts: models.filter((m: { accuracyAlert: boolean }) => m.accuracyAlert).map((m: { name: string }) => m.name),
    lastSync: newest ? newest.sync : null,
  };
}

export function fleetTable(devices: FleetDevice[]): string {
  if (devices.length === 0) return 'no device has published a status on this broker\n';
  const list = (xs: string[]) => (xs.length ? xs.join(',') : '-');
  return table(
    ['device', 'online', 'models', 'trial', 'drift', 'accuracy', 'last sync'],
    devices.map((d) => [
      d.deviceId,
      d.online ? 'yes' : `no${d.reason ? ` (${d.reason})` : ''}`,
      d.models.map((m) => `${m.name}@${m.version}`).join(' ') || '-',
      list(d.trials),
      list(d.driftAlerts),
      list(d.accuracyAlerts),
      d.lastSync ?? '-',
    ]),
  );
}

interface Opts {
  broker: string;
  channel?: string;
  json?: boolean;
  watch?: boolean;
  settle: number;
  interval: number;
  username?: string;
  password?: string;
}

/**
 * Collect retained statuses: the broker sends every retained edgeloop/+/status right after
 * the subscription; we wait until none has arrived for `settleMs` (or 5x that in all).
 */
async function collect(o: Opts, onUpdate?: (devices: Map<string, FleetDevice>) => void): Promise<{ devices: Map<string, FleetDevice>; close(): Promise<void> }> {
  const mqtt = await import('mqtt');
  const client = await mqtt
    .connectAsync(o.broker, { connectTimeout: 5000, reconnectPeriod: o.watch ? 1000 : 0, username: o.username, password: o.password, clientId: `edgeloop-fleet-${process.pid}-${Date.now().toString(36)}` })
    .catch((err: Error) => {
      throw new EdgeloopError('EDGELOOP_BROKER_UNREACHABLE', `cannot connect to ${o.broker}: ${err.message}`);
    });
  const devices = new Map<string, FleetDevice>();
  let last = Date.now();
  client.on('message', (topic, payload) => {
    const device = topic.split('/')[1];
    if (payload.length === 0) {
      devices.delete(device); // retained status cleared
    } else {
      try {
        devices.set(device, fleetRow(device, JSON.parse(payload.toString())));
      } catch {
        return; // not a status document: ignore
      }
    }
    last = Date.now();
    onUpdate?.(devices);
  });
  await client.subscribeAsync('edgeloop/+/status', { qos: 1 });
  const started = Date.now();
  while (Date.now() - last < o.settle && Date.now() - started < o.settle * 5) await new Promise((r) => setTimeout(r, 50));
  if (Date.now() - started < o.settle) await new Promise((r) => setTimeout(r, o.settle - (Date.now() - started)));
  return { devices, close: () => client.endAsync() };
}

function select(devices: Map<string, FleetDevice>, channel?: string): FleetDevice[] {
  return [...devices.values()].filter((d) => !channel || d.channel === channel).sort((a, b) => a.deviceId.localeCompare(b.deviceId));
}

/** `edgeloop fleet status`: one row per device from the retained statuses on a broker. */
export function registerFleetStatus(program: Command): void {
  const fleet = program.commands.find((c) => c.name() === 'fleet') ?? program.command('fleet').description('operator views over the whole fleet');
  fleet
    .command('status')
    .description('every device on a broker: online, models and versions, trials, drift and accuracy alerts, last sync (from retained edgeloop/+/status)')
    .requiredOption('--broker <url>', 'the fleet broker, e.g. mqtt://broker.local:1883')
    .option('--channel <name>', 'only devices following this release channel')
    .option('--username <name>', 'broker user')
    .option('--password <secret>', 'broker password')
    .option('--json', 'machine-readable: an array of devices')
    .option('--watch', 'keep running and redraw when a status changes')
    .option('--settle <ms>', 'wait this long after the last retained status', (v) => Number(v), 500)
    .option('--interval <ms>', '--watch: redraw at most this often', (v) => Number(v), 1000)
    .addHelpText('after', '\nExamples:\n  edgeloop fleet status --broker mqtt://broker.local:1883\n  edgeloop fleet status --broker mqtt://broker.local:1883 --channel stable --json\n  edgeloop fleet status --broker mqtt://broker.local:1883 --watch')
    .action(async (o: Opts) => {
      try {
        const render = (devices: Map<string, FleetDevice>) => {
          const rows = select(devices, o.channel);
          return o.json ? `${JSON.stringify(rows, null, 2)}\n` : fleetTable(rows);
        };
        if (!o.watch) {
          const { devices, close } = await collect(o);
          process.stdout.write(render(devices));
          await close();
          return;
        }
        let dirty = true;
        const { devices } = await collect(o, () => (dirty = true));
        const draw = () => {
          if (!dirty) return;
          dirty = false;
          const head = o.json ? '' : `\x1b[2J\x1b[H${new Date().toISOString().slice(0, 19).replace('T', ' ')}  ${o.broker}  (Ctrl-C to stop)\n\n`;
          process.stdout.write(head + render(devices));
        };
        draw();
        setInterval(draw, Math.max(100, o.interval));
      } catch (err) {
        fail(err);
      }
    });
}
