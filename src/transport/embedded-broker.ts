import net from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from 'pino';
import { EdgeloopError } from '../errors.js';

/** The in-process aedes broker started when no external broker is configured. */
export interface EmbeddedBroker {
  host: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Start aedes on host:port. aedes speaks MQTT 3.1 and 3.1.1 only (it refuses MQTT 5
 * CONNECTs), so on the embedded broker clients reply-route with JSON replyTo/id; MQTT 5
 * response topics need an external broker such as Mosquitto.
 */
export async function startEmbeddedBroker(host: string, port: number, log?: Logger): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker();
  aedes.on('clientError', (client, err) => log?.debug({ client: client?.id, err: err.message }, 'mqtt client error'));
  const server = net.createServer(aedes.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      aedes.close();
      reject(new EdgeloopError('EDGELOOP_BROKER_UNREACHABLE', `embedded broker cannot listen on ${host}:${port} (${err.code ?? err.message})`));
    });
    server.listen(port, host, () => resolve());
  });
  const actualPort = (server.address() as net.AddressInfo).port;
  log?.info({ host, port: actualPort }, 'embedded mqtt broker listening');
  return {
    host,
    port: actualPort,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        aedes.close();
      }),
  };
}
