import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Command } from 'commander';
import { sanitizeDeviceId } from '../config/index.js';
import { EdgeloopError } from '../errors.js';
import { topicsFor } from '../transport/index.js';
import { fail, table } from './output.js';

interface PredictOptions {
  input: string;
  broker: string;
  deviceId?: string;
  timeout: number;
  json?: boolean;
  head?: number;
}

/** Read --input: inline JSON, @file.json, or @file.csv (a header row and a label/target column are dropped). */
export function readInput(spec: string): unknown {
  return readInputWithTruth(spec).inputs;
}

/** As {@link readInput}, keeping a CSV's label/target column as the true values to print beside the predictions. */
export function readInputWithTruth(spec: string): { inputs: unknown; truth?: string[] } {
  if (!spec.startsWith('@')) return { inputs: parseJson(spec, '--input') };
  const file = spec.slice(1);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_USAGE', `--input ${file}: ${(err as Error).message}`);
  }
  if (!file.endsWith('.csv')) return { inputs: parseJson(text, file) };
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  let drop = -1;
  if (lines.length && lines[0].split(',').some((c) => c.trim() !== '' && Number.isNaN(Number(c)))) {
    const header = lines.shift()!.split(',').map((c) => c.trim().toLowerCase());
    drop = header.findIndex((h) => h === 'label' || h === 'target');
  }
  const rows = lines.map((l) => l.split(',').filter((_, i) => i !== drop).map(Number));
  if (rows.length === 0) throw new EdgeloopError('EDGELOOP_USAGE', `--input ${file}: no data rows`);
  return drop < 0 ? { inputs: rows } : { inputs: rows, truth: lines.map((l) => (l.split(',')[drop] ?? '').trim()) };
}

function parseJson(text: string, where: string): unknown {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) && 'inputs' in v ? (v as { inputs: unknown }).inputs : v;
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_USAGE', `${where} is not valid JSON (${(err as Error).message})`);
  }
}

export function registerPredict(program: Command): void {
  program
    .command('predict <model>')
    .description('send one inference request over MQTT and print the reply')
    .requiredOption('-i, --input <json|@file>', 'a row, rows, {"inputs":...}, @file.json or @file.csv')
    .option('--broker <url>', 'broker the daemon uses', 'mqtt://127.0.0.1:1883')
    .option('--device-id <id>', 'device to ask (default: this host)')
    .option('--timeout <ms>', 'give up after', (v) => Number(v), 5000)
    .option('--head <n>', 'send only the first n rows', (v) => Number(v))
    .option('--json', 'print the raw reply')
    .addHelpText('after', '\nExamples:\n  edgeloop predict digits --input @data/digits.csv --head 5\n  edgeloop predict digits --input \'[0,0,5,13,9,1,0,0, ...64 values]\'')
    .action(async (model: string, o: PredictOptions) => {
      try {
        let { inputs, truth } = readInputWithTruth(o.input);
        if (o.head && Array.isArray(inputs) && Array.isArray(inputs[0])) {
          inputs = inputs.slice(0, o.head);
          truth = truth?.slice(0, o.head);
        }
        const reply = await request(model, inputs, o);
        if (o.json) process.stdout.write(JSON.stringify(truth ? { ...reply, truth } : reply, null, 2) + '\n');
        else process.stdout.write(formatReply(reply, truth));
        if (reply.error) process.exitCode = reply.error.code === 'EDGELOOP_MODEL_NOT_FOUND' ? 3 : 1;
      } catch (err) {
        fail(err);
      }
    });
}

interface Reply {
  model?: string;
  version?: string;
  predictions?: Record<string, unknown>[];
  latencyMs?: number;
  error?: { code: string; message: string };
}

/** One request/response over MQTT 3.1.1 (replyTo + id), which every broker supports. */
async function request(model: string, inputs: unknown, o: PredictOptions): Promise<Reply> {
  const deviceId = o.deviceId ?? sanitizeDeviceId(os.hostname());
  const topics = topicsFor(deviceId);
  const id = randomUUID();
  const replyTo = `edgeloop/${deviceId}/replies/cli-${id}`;
  const { default: mqtt } = await import('mqtt'); // only this command needs a client
  const client = mqtt.connect(o.broker, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: o.timeout });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', (err) => reject(new EdgeloopError('EDGELOOP_BROKER_UNREACHABLE', `cannot reach ${o.broker}: ${err.message}`)));
      client.once('close', () => reject(new EdgeloopError('EDGELOOP_BROKER_UNREACHABLE', `cannot reach ${o.broker} (is the daemon running?)`)));
    });
    await client.subscribeAsync(replyTo, { qos: 1 });
    const answer = new Promise<Reply>((resolve) => client.on('message', (_t, payload) => resolve(JSON.parse(payload.toString()))));
    await client.publishAsync(topics.infer(model), JSON.stringify({ inputs, id, replyTo }), { qos: 1 });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new EdgeloopError('EDGELOOP_TIMEOUT', `no reply from device '${deviceId}' within ${o.timeout} ms (is it serving on ${o.broker}?)`)), o.timeout);
    });
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
  } finally {
    client.end(true);
  }
}

/** The reply for people; with the CSV's true values, a `true` column, a mark on each miss and the hit count. */
export function formatReply(reply: Reply, truth?: string[]): string {
  if (reply.error) return `error ${reply.error.code}: ${reply.error.message}\n`;
  const head = `${reply.model}@${reply.version}  ${reply.latencyMs} ms\n`;
  const predictions = reply.predictions ?? [];
  const classifier = predictions.length > 0 && predictions.every((p) => 'label' in p);
  let hits = 0;
  const rows = predictions.map((p, i) => {
    const base = 'label' in p ? [i, String(p.label), Number(p.confidence).toFixed(3)] : [i, JSON.stringify('value' in p ? p.value : (p.values ?? p.embedding)), ''];
    if (!truth) return base;
    const t = truth[i] ?? '';
    const hit = classifier && String(p.label) === t;
    if (hit) hits++;
    return [...base, t, classifier ? (hit ? '' : 'x') : ''];
  });
  const headers = truth ? ['row', 'prediction', 'confidence', 'true', classifier ? 'miss' : ''] : ['row', 'prediction', 'confidence'];
  const summary = truth && classifier ? `${hits}/${predictions.length} correct\n` : '';
  return head + table(headers, rows) + summary;
}
