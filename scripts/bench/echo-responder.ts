/**
 * The echo ceiling: stands in for the daemon (same broker, same subscription, same reply
 * routing) but does no work, answering every request with a fixed reply. What the load
 * generator measures against it is the cost of MQTT itself on this machine.
 * Child-process entry: argv[2] is JSON { url, filter, reply }; says 'ready' over IPC.
 */
import mqtt from 'mqtt';

async function main(o: { url: string; filter: string; reply: string }): Promise<void> {
  const client = await mqtt.connectAsync(o.url, { protocolVersion: 5, clientId: `bench-echo-${process.pid}`, reconnectPeriod: 0, clean: true });
  client.on('message', (_topic, _payload, packet) => {
    const p = packet.properties;
    if (!p?.responseTopic) return;
    // Same publish call as MqttTransport.publish: a JSON string, the request's QoS, correlation data.
    client.publish(p.responseTopic, o.reply, { qos: packet.qos, properties: { correlationData: p.correlationData, contentType: 'application/json' } });
  });
  await client.subscribeAsync(o.filter, { qos: 1 }); // the daemon subscribes with QoS 1 too
  process.once('SIGTERM', () => void client.endAsync(true).finally(() => process.exit(0)));
  process.send?.('ready');
}

if (process.argv[2]) {
  main(JSON.parse(process.argv[2])).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
