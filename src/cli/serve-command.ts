import type { Command } from 'commander';
import { readConfigFile, resolveConfig, type EdgeloopConfigInput } from '../config/index.js';
import type { Daemon } from '../daemon/daemon.js';
import { createLogger } from '../daemon/logger.js';
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
    .option('--device-id <id>', 'device id used in topics (default: host name)')
    .option('--log-level <level>', 'trace|debug|info|warn|error')
    .addHelpText('after', '\nExample:\n  edgeloop serve --port 1883 --device-id dev1\n  edgeloop serve --broker mqtt://broker.local:1883 --config device-configs/raspberry-pi-4.json')
    .action(async (o: { config?: string; home?: string; models?: string; broker?: string; port?: number; deviceId?: string; logLevel?: string }) => {
      let daemon: Daemon | undefined;
      try {
        const file = o.config ? readConfigFile(o.config) : {};
        const overrides: EdgeloopConfigInput = {
          home: o.home,
          modelsDir: o.models,
          deviceId: o.deviceId,
          logLevel: o.logLevel as EdgeloopConfigInput['logLevel'],
          broker: { url: o.broker, port: o.port },
        };
        const config = resolveConfig(file, overrides);
        const log = createLogger(config.logLevel);
        // Imported here: other commands should not load the whole daemon to start.
        const { Daemon } = await import('../daemon/daemon.js');
        daemon = new Daemon({ config, log });
        const d = daemon;
        const onSignal = (signal: string) => {
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
