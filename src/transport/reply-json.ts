import type { Prediction, ServedModel } from '../engine/index.js';

/**
 * The JSON text of a successful row reply, the same text JSON.stringify makes of
 * `{model, version, predictions, latencyMs, predictionId?, id?}`, written directly: for a
 * classifier JSON.stringify walks an object and an array per row and formats each probability
 * as a shortest-round-trip double, a fifth of the daemon's own CPU per request. Probabilities
 * are rounded to 6 decimals (ServedModel), so they print exactly as integer millionths.
 */
export function rowsReplyJson(model: ServedModel, predictions: readonly Prediction[], latencyMs: number, predictionId: string | undefined, id: string | number | undefined): string {
  const parts = partsOf(model);
  let text = parts.head;
  for (let r = 0; r < predictions.length; r++) {
    if (r > 0) text += ',';
    const p = predictions[r] as Prediction & { predictionId?: string };
    text += parts.classifier && 'probabilities' in p ? classification(p, parts) : JSON.stringify(p);
  }
  text += `],"latencyMs":${number6(latencyMs)}`;
  if (predictionId !== undefined) text += `,"predictionId":${JSON.stringify(predictionId)}`;
  if (id !== undefined) text += `,"id":${JSON.stringify(id)}`;
  return text + '}';
}

interface ReplyParts {
  head: string;
  classifier: boolean;
  labels: Map<string, string>;
}

const cache = new WeakMap<ServedModel, ReplyParts>();

function partsOf(model: ServedModel): ReplyParts {
  let parts = cache.get(model);
  if (!parts) {
    parts = { head: `{"model":${JSON.stringify(model.name)},"version":${JSON.stringify(model.version)},"predictions":[`, classifier: model.manifest.task === 'classification', labels: new Map() };
    cache.set(model, parts);
  }
  return parts;
}

/** `{"label":…,"index":…,"confidence":…,"probabilities":[…],"predictionId":…}` in ServedModel's key order. */
function classification(p: { label: string; index: number; confidence: number; probabilities: number[]; predictionId?: string }, parts: ReplyParts): string {
  let label = parts.labels.get(p.label);
  if (label === undefined) {
    label = JSON.stringify(p.label);
    if (parts.labels.size < 4096) parts.labels.set(p.label, label);
  }
  let text = `{"label":${label},"index":${p.index},"confidence":${number6(p.confidence)},"probabilities":[`;
  const probs = p.probabilities;
  for (let i = 0; i < probs.length; i++) text += i > 0 ? `,${number6(probs[i])}` : number6(probs[i]);
  text += ']';
  if (p.predictionId !== undefined) text += `,"predictionId":${JSON.stringify(p.predictionId)}`;
  return text + '}';
}

const MILLION = 1e6;

/**
 * JSON.stringify(x) for a number, fast for values with at most 6 decimals below 1e9: their
 * shortest round-trip form is the integer millionths with the decimal point put back (the
 * spacing of doubles there is far below 1e-6). Anything else goes to JSON.stringify.
 */
export function number6(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const a = x < 0 ? -x : x;
  if (!(a < 1e9)) return JSON.stringify(x);
  const k = Math.round(a * MILLION);
  if (k / MILLION !== a) return JSON.stringify(x);
  const whole = Math.floor(k / MILLION);
  let frac = k - whole * MILLION;
  let places = 6;
  while (frac % 10 === 0) {
    frac /= 10;
    places--;
  }
  const digits = String(frac);
  return `${x < 0 ? '-' : ''}${whole}.${'000000'.slice(0, places - digits.length)}${digits}`;
}
