import type { Command } from 'commander';
import { readConfigFile, resolveConfig, type EdgeloopConfigInput } from '../config/index.js';
import type { Daemon } from '../daemon/daemon.js';
import { createLogger, type LogFormat } from '../daemon/logger.js';
import { createSystemdNotifier } from '../daemon/systemd-notify.js';
import { EdgeloopError } from '../errors.js';
import { fail } from './output.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the daemon: serve the models over MQTT (embedded broker unless --broker)')
    .option('-c, --config <file>', 'device config (JSON; see device-configs/)')
    .option('--home <dir>', 'state directory')
    .option('--models <dir>', 'folder of model bundles to serve')
    .option('--broker <url>', 'external broker, e.g. mqtt://localhost:1883 or mqtts://host:8883')
    .option('--port <n>', 'embedded broker port (default 1883)', (v) => Number(v))
    .option('--http-port <n>', 'HTTP listener (OIP v2 REST, /predict, /metrics, health) on 127.0.0.1 unless http.host says otherwise', (v) => Number(v))
    .option('--device-id <id>', 'device id used in topics (default: host name)')
    .option('--log-level <level>', 'trace|debug|info|warn|error')
    .option('--log-format <format>', 'pretty|json|auto (auto: pretty on a terminal, JSON otherwise)', 'auto')
    .option('--profile <name>', "device profile from device-configs/ under the config: 'auto' (by detected board) or a name")
    .addHelpText('after', '\nExample:\n  edgeloop serve --port 1883 --device-id dev1\n  edgeloop serve --http-port 8080   (then curl localhost:8080/v2/health/ready, /metrics)\n  edgeloop serve --profile auto --broker mqtt://broker.local:1883\n  edgeloop serve --broker mqtt://broker.local:1883 --config device-configs/raspberry-pi-4.json')
    .action(async (o: { config?: string; home?: string; models?: string; broker?: string; port?: number; httpPort?: number; deviceId?: string; logLevel?: string; logFormat: string; profile?: string }) => {
      let daemon: Daemon | undefined;
      try {
        const file = o.config ? readConfigFile(o.config) : {};
        const overrides: EdgeloopConfigInput = {
          home: o.home,
          modelsDir: o.models,
          deviceId: o.deviceId,
          logLevel: o.logLevel as EdgeloopConfigInput['logLevel'],
          profile: o.profile,
          broker: { url: o.broker, port: o.port },
          http: o.httpPort !== undefined ? ({ port: o.httpPort } as EdgeloopConfigInput['http']) : undefined,
        };
        const config = resolveConfig(file, overrides);
        const format = (process.env.EDGELOOP_LOG_FORMAT || o.logFormat) as LogFormat;
        if (!['json', 'pretty', 'auto'].includes(format)) throw new EdgeloopError('EDGELOOP_USAGE', `'--log-format' must be pretty, json or auto; got '${format}'`);
        const log = createLogger(config.logLevel, { format });
        if (config.deviceProfile) log.info({ profile: config.deviceProfile }, `device profile ${config.deviceProfile.name ?? '(none)'}: ${config.deviceProfile.reason}`);
        // systemd (Type=notify): READY=1 once serving, STOPPING=1 when a stop begins, WATCHDOG=1 meanwhile.
        const notify = createSystemdNotifier({ log });
        // Imported here: other commands should not load the whole daemon to start.
        const { Daemon } = await import('../daemon/daemon.js');
        daemon = new Daemon({ config, log });
        const d = daemon;
        d.once('ready', ({ models }) => void notify.ready(`serving ${models.length} model(s)`));
        d.once('stopped', () => notify.close());
        const onSignal = (signal: string) => {
          void notify.stopping(`stopping (${signal})`);
          d.stop(signal).then(
            () => {
              log.flush();
              process.exit(0);
            },
            (err) => {
              log.error({ err }, 'stop failed');
              log.flush();
              process.exit(1);
            },
          );
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception (kept serving)'));
        process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (kept serving)'));
        await daemon.start();
      } catch (err) {
        await daemon?.stop('start failed').catch(() => undefined);
        fail(err);
      }
    });
}
