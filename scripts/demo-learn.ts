/**
 * Learning demo: the daemon serves the digits model (ONNX int8) on its embedded broker; a
 * field fault shifts every image one pixel right; accuracy falls and drift is alerted; 500 rows
 * of labelled feedback arrive over MQTT (by predictionId); a fine-tune run trains on them, the
 * gate scores the candidate against the serving version and promotes it on trial; accuracy
 * comes back. Then feedback with random labels, whose candidate the gate refuses; then a bad
 * candidate forced past the gate, which its trial on labels rolls back by itself.
 *
 *   npx tsx scripts/demo-learn.ts [--fault shift-right|stuck-pixels] [--keep]
 *
 * Everything goes through the daemon's own MQTT topics and its learning service, as a device
 * and a technician would use them (`edgeloop retrain digits --wait` is the same call).
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import pino from 'pino';
import { resolveConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon/daemon.js';
import { fineTune, type DigitsFault, type RetrainOutcome, type TrainRows } from '../src/learning/index.js';
import { digitsScenario, faulty, randomLabels, slice } from '../test/helpers/learning-scenario.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../..');
const { values: args } = parseArgs({ options: { fault: { type: 'string', default: 'shift-right' }, keep: { type: 'boolean', default: false } } });
const FAULT = args.fault as DigitsFault;
const say = (s: string) => process.stdout.write(`${s}\n`);
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-learn-demo-'));
const home = path.join(tmp, 'home');
const modelsDir = path.join(tmp, 'models');
cpSync(path.join(root, 'models/digits'), path.join(modelsDir, 'digits'), { recursive: true });

const config = resolveConfig(
  {
    deviceId: 'demo',
    home,
    modelsDir,
    broker: { port: 0 },
    drift: { window: { rows: 200, minRows: 100, ms: 60_000 }, flushIntervalMs: 200 },
    feedback: { flushIntervalMs: 200 },
    // Manual runs here, so the demo shows each step; `learning.auto` starts them on an open alert.
    learning: { auto: false },
  },
  {},
  {},
);
const daemon = new Daemon({ config, log: pino({ level: 'silent' }) });
await daemon.start();
say(`1. daemon serving digits@${daemon.servedModels().get('digits')!.version} (ONNX int8) on ${daemon.brokerUrl}, device 'demo'`);

const client = await mqtt.connectAsync(daemon.brokerUrl, { protocolVersion: 4, reconnectPeriod: 0 });
const replyTopic = 'demo/replies';
const topics = { drift: daemon.topics.events('drift'), learning: daemon.topics.events('learning'), model: daemon.topics.events('model') };
await client.subscribeAsync([replyTopic, ...Object.values(topics)], { qos: 1 });
const waiting = new Map<number, (reply: Record<string, unknown>) => void>();
let driftAlerts = 0;
client.on('message', (topic, payload) => {
  const msg = JSON.parse(payload.toString()) as Record<string, unknown>;
  if (topic === topics.drift) {
    if (msg.type === 'drift-alert') (driftAlerts++, say(`   >> events/drift: ${msg.message}`));
  } else if (topic === topics.learning) {
    if (msg.type !== 'progress') say(`   >> events/learning: ${msg.type}: ${msg.message}`);
  } else if (topic === topics.model) {
    if (msg.action === 'rollback' || msg.action === 'commit' || msg.action === 'gate-refused') say(`   >> events/model: ${msg.action} ${msg.from ?? ''} -> ${msg.to ?? ''}: ${msg.reason}`);
  } else {
    waiting.get(msg.id as number)?.(msg);
    waiting.delete(msg.id as number);
  }
});
let nextId = 0;
function request(topic: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const id = ++nextId;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    void client.publishAsync(topic, JSON.stringify({ ...body, id, replyTo: replyTopic }), { qos: 1 });
  });
}

/** Serve rows over MQTT (10 a request); accuracy of the replies against the true labels, and their prediction ids. */
async function serve(r: TrainRows): Promise<{ accuracy: number; ids: string[]; version: string }> {
  let right = 0;
  const ids: string[] = [];
  let version = '';
  for (let i = 0; i < r.rows; i += 10) {
    const n = Math.min(10, r.rows - i);
    const rows = Array.from({ length: n }, (_, k) => Array.from(r.x.subarray((i + k) * 64, (i + k + 1) * 64)));
    const reply = (await request(daemon.topics.infer('digits'), { inputs: rows })) as { predictions: { index: number; predictionId: string }[]; version: string };
    version = reply.version;
    reply.predictions.forEach((p, k) => {
      right += +(p.index === r.y[i + k]);
      ids.push(p.predictionId);
    });
  }
  return { accuracy: right / r.rows, ids, version };
}

/** Label served predictions over MQTT, 50 a message. */
async function label(ids: string[], y: Float32Array): Promise<number> {
  let accepted = 0;
  for (let i = 0; i < ids.length; i += 50) {
    const items = ids.slice(i, i + 50).map((predictionId, k) => ({ predictionId, label: String(y[i + k]) }));
    const ack = (await request(`edgeloop/demo/feedback/digits`, { items })) as { accepted?: number; error?: { message: string } };
    if (ack.error) throw new Error(ack.error.message);
    accepted += ack.accepted ?? 0;
  }
  await daemon.feedback!.flush();
  return accepted;
}

function gateLine(o: RetrainOutcome): string {
  const g = o.gate;
  if (!g) return `   ${o.outcome}: ${o.reason}`;
  const anchor = g.anchor ? `; anchor ${pct(g.anchor.parent)} -> ${pct(g.anchor.candidate)} (drop at most ${pct(g.maxAnchorDrop)})` : '';
  return `   gate: holdout ${g.holdout.rows} rows, serving ${pct(g.holdout.parent)} -> candidate ${pct(g.holdout.candidate)} (needs +${pct(g.minGain)}, p=${g.holdout.pValue.toPrecision(2)})${anchor}\n   outcome: ${o.outcome}${o.version ? ` ${o.version}` : ''} after ${(o.durationMs / 1000).toFixed(1)} s (${o.rows.new} new rows, ${o.rows.replay} replay, strategy ${o.strategy ?? '-'})`;
}

const scenario = await digitsScenario(path.join(root, 'models/digits'));
const cleanEval = slice(scenario.clean, 0, Math.min(300, scenario.clean.rows));
const shiftedEval = faulty(cleanEval, FAULT);

say(`2. ${cleanEval.rows} clean held-out rows`);
const clean = await serve(cleanEval);
say(`   accuracy ${pct(clean.accuracy)}`);
// Feedback flows all along: labelled rows from before the fault are what fine-tuning replays against forgetting.
const before = slice(scenario.pool, 900, 500);
say(`   ${await label((await serve(before)).ids, before.y)} clean rows labelled over MQTT as they are served (feedback by predictionId)`);
say(`3. field fault '${FAULT}' (${FAULT === 'shift-right' ? 'the camera moved: every image one pixel right' : 'four central pixels stuck at 0'}), ${shiftedEval.rows} rows`);
const shifted = await serve(shiftedEval);
await serve(faulty(slice(scenario.pool, 500, 200), FAULT)); // more faulty traffic: the drift windows fill
await new Promise((r) => setTimeout(r, 600));
say(`   accuracy ${pct(shifted.accuracy)}; drift alerts raised: ${driftAlerts}`);

say('4. 500 faulty rows served, then labelled over MQTT by predictionId (edgeloop/demo/feedback/digits)');
const field = faulty(slice(scenario.pool, 0, 500), FAULT);
const served = await serve(field);
say(`   ${await label(served.ids, field.y)} labels accepted; live accuracy ${pct(daemon.feedback!.liveAccuracy('digits')?.accuracy ?? NaN)}`);

say('5. edgeloop retrain digits --wait');
const promoted = await daemon.learning!.retrain('digits', { actor: 'cli', trigger: 'demo' }).done;
say(gateLine(promoted));
const after = await serve(shiftedEval);
const afterClean = await serve(cleanEval);
const ratio = (after.accuracy - shifted.accuracy) / (clean.accuracy - shifted.accuracy);
say(`6. now serving ${after.version}: faulty rows ${pct(shifted.accuracy)} -> ${pct(after.accuracy)} (recovered ${(ratio * 100).toFixed(0)}% of the loss), clean rows ${pct(clean.accuracy)} -> ${pct(afterClean.accuracy)}`);
// Its trial on labels: more labelled faulty rows, both versions predict them.
const more = faulty(slice(scenario.pool, 500, 100), FAULT);
await label((await serve(more)).ids, more.y);
await new Promise((r) => setTimeout(r, 300));
say(`   trial: ${daemon.registry!.summary('digits').serving?.status} (${daemon.registry!.summary('digits').serving?.statusReason ?? ''})`);

say('7. feedback with random labels (a broken labelling pipeline): 300 rows, then retrain');
const noise = randomLabels(faulty(slice(scenario.pool, 600, 300), FAULT), 11);
await label((await serve(noise)).ids, noise.y);
const refused = await daemon.learning!.retrain('digits', { actor: 'cli', trigger: 'demo' }).done;
say(gateLine(refused));

say('8. a bad candidate forced past the gate: fine-tuned on labels that are off by one (3 labelled as 4), activated with --force');
const serving = daemon.registry!.summary('digits').serving!;
const offByOne = { ...field, y: field.y.map((v) => (v + 1) % 10) };
const bad = await fineTune({ bundleDir: daemon.registry!.versionDir('digits', serving.version), rows: offByOne, policy: { epochs: 40 }, version: '9.9.9-bad', workDir: tmp }).result;
if (bad.outcome !== 'candidate') throw new Error(`the bad candidate was not built: ${bad.outcome}: ${"message" in bad ? bad.message : ""}`);
await daemon.registry!.install(bad.dir, { actor: 'cli', source: 'finetune', parentVersion: serving.version, reason: 'demo: fine-tuned on off-by-one labels' });
await bad.discard();
await daemon.models.activate('digits', '9.9.9-bad', { actor: 'cli', force: true, reason: 'demo' });
say(`   serving ${daemon.servedModels().get('digits')!.version} on trial; true labels keep arriving`);
for (let i = 0; i < 5 && daemon.servedModels().get('digits')!.version === '9.9.9-bad'; i++) {
  const truth = faulty(slice(scenario.pool, 900 + i * 40, 40), FAULT);
  await label((await serve(truth)).ids, truth.y);
  await new Promise((r) => setTimeout(r, 300));
}
say(`   now serving ${daemon.servedModels().get('digits')!.version}`);

say('\n9. edgeloop models history digits');
for (const h of daemon.registry!.history('digits', 8).reverse()) say(`   ${h.at.slice(11, 19)}  ${h.action.padEnd(15)} ${(h.fromVersion ?? '-').padEnd(11)} -> ${(h.toVersion ?? '-').padEnd(11)} ${h.actor.padEnd(6)} ${(h.reason ?? '').slice(0, 110)}`);

await client.endAsync();
await daemon.stop('demo done');
if (args.keep) say(`\nstate kept in ${tmp}: edgeloop runs list --home ${home}`);
else rmSync(tmp, { recursive: true, force: true });
const ok = promoted.outcome === 'promoted' && refused.outcome === 'refused' && ratio >= 0.8;
say(`\nsummary: promoted ${promoted.outcome === 'promoted'}, recovery ${(ratio * 100).toFixed(0)}%, random labels refused ${refused.outcome === 'refused'}`);
process.exit(ok ? 0 : 1);
