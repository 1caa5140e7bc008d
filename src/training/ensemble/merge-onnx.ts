import onnxProto from 'onnx-proto';
import { EdgeloopError } from '../../errors.js';

// onnx-proto is CommonJS: the `onnx` namespace is on the default export (see onnx/onnx-writer.ts).
const { onnx } = onnxProto;
type ModelProto = InstanceType<typeof onnx.ModelProto>;
type NodeProto = import('onnx-proto').onnx.INodeProto;
type TensorProto = import('onnx-proto').onnx.ITensorProto;

/** One member model of a soft-voting ensemble. */
export interface OnnxMember {
  bytes: Uint8Array;
  /** Voting weight (normalised over the members). */
  weight: number;
  /** The member's first output is logits: softmax it before voting. */
  logits?: boolean;
  /** Standardise the ensemble's (raw) input for this member: (x - mean) * (1 / std). */
  standardize?: { mean: number[]; std: number[] };
}

export interface MergeOptions {
  inputName: string;
  /** Per-row input shape (without the batch dimension). */
  inputShape: number[];
  outputName: string;
  /** Values per row of the voted output (classes, or 1). */
  outputWidth: number;
  /** Softmax over the last axis applies to classifiers only. */
  task: 'classification' | 'regression';
}

const exportError = (m: string) => new EdgeloopError('EDGELOOP_EXPORT_FAILED', m);
const num = (v: unknown): number => Number(v ?? 0);

function floats(name: string, values: readonly number[], dims: number[]): TensorProto {
  return onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, rawData: new Uint8Array(Float32Array.from(values).buffer) });
}

function node(opType: string, inputs: string[], outputs: string[], name: string, attribute: InstanceType<typeof onnx.AttributeProto>[] = []): NodeProto {
  return onnx.NodeProto.create({ name, opType, input: inputs, output: outputs, attribute });
}

/**
 * One ONNX graph that runs every member on the same input and averages their first outputs
 * with the given weights (soft voting; for regressors, a weighted mean). Each member's names
 * are prefixed `m<i>/`, so any graphs merge; members must share one input shape and the same
 * default-domain opset. The result is an ordinary ONNX model: the daemon serves it and
 * `edgeloop eval` scores it like any other bundle.
 */
export function mergeOnnx(members: readonly OnnxMember[], o: MergeOptions): Uint8Array {
  if (members.length < 2) throw exportError('an ensemble needs at least two members');
  const decoded = members.map((m, i) => {
    try {
      return onnx.ModelProto.decode(m.bytes);
    } catch (err) {
      throw exportError(`member ${i + 1}: not an ONNX model (${(err as Error).message})`);
    }
  });
  const opsets = new Map<string, number>();
  for (const [i, model] of decoded.entries()) {
    for (const set of model.opsetImport ?? []) {
      const domain = set.domain ?? '';
      const version = num(set.version);
      const seen = opsets.get(domain);
      if (seen !== undefined && seen !== version) throw exportError(`member ${i + 1} uses opset ${version} of domain '${domain || 'ai.onnx'}', another member ${seen}; export the members with one opset`);
      opsets.set(domain, version);
    }
  }

  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const voted: string[] = [];
  const total = members.reduce((a, m) => a + m.weight, 0);
  const uniform = members.every((m) => m.weight === members[0].weight);
  decoded.forEach((model, i) => {
    const graph = model.graph;
    if (!graph) throw exportError(`member ${i + 1}: the model has no graph`);
    const p = `m${i}/`;
    const initNames = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
    const inputs = (graph.input ?? []).filter((v) => !initNames.has(v.name ?? ''));
    if (inputs.length !== 1) throw exportError(`member ${i + 1}: an ensemble member must have one input, it has ${inputs.length}`);
    const dims = inputs[0].type?.tensorType?.shape?.dim?.slice(1).map((d) => num(d.dimValue)) ?? [];
    if (dims.join('x') !== o.inputShape.join('x')) throw exportError(`member ${i + 1}: input shape [${dims.join(', ')}] differs from the ensemble's [${o.inputShape.join(', ')}]`);
    const memberInput = inputs[0].name!;
    let feed = o.inputName;
    const m = members[i];
    if (m.standardize) {
      const shape = [m.standardize.mean.length];
      initializers.push(floats(`${p}standardize/mean`, m.standardize.mean, shape));
      initializers.push(floats(`${p}standardize/inv_std`, m.standardize.std.map((s) => (s > 0 ? 1 / s : 1)), shape));
      // A 4-D input flattens to the mean's length for the per-feature arithmetic, then back.
      const flat = o.inputShape.length > 1;
      let x = o.inputName;
      if (flat) {
        initializers.push(onnx.TensorProto.create({ name: `${p}standardize/flat`, dataType: onnx.TensorProto.DataType.INT64, dims: [2], int64Data: [-1, shape[0]] }));
        nodes.push(node('Reshape', [x, `${p}standardize/flat`], [`${p}standardize/x_flat`], `${p}standardize/reshape_in`));
        x = `${p}standardize/x_flat`;
      }
      nodes.push(node('Sub', [x, `${p}standardize/mean`], [`${p}standardize/centred`], `${p}standardize/sub`));
      nodes.push(node('Mul', [`${p}standardize/centred`, `${p}standardize/inv_std`], [`${p}standardize/out`], `${p}standardize/mul`));
      feed = `${p}standardize/out`;
      if (flat) {
        initializers.push(onnx.TensorProto.create({ name: `${p}standardize/shape`, dataType: onnx.TensorProto.DataType.INT64, dims: [o.inputShape.length + 1], int64Data: [-1, ...o.inputShape] }));
        nodes.push(node('Reshape', [feed, `${p}standardize/shape`], [`${p}standardize/x`], `${p}standardize/reshape_out`));
        feed = `${p}standardize/x`;
      }
    }
    const rename = (name: string): string => (name === '' ? '' : name === memberInput ? feed : p + name);
    for (const t of graph.initializer ?? []) {
      t.name = p + t.name;
      initializers.push(t);
    }
    for (const n of graph.node ?? []) {
      if ((n.attribute ?? []).some((a) => a.g || (a.graphs && a.graphs.length))) throw exportError(`member ${i + 1}: node '${n.name}' has a subgraph; control flow is not supported in ensembles`);
      n.input = (n.input ?? []).map(rename);
      n.output = (n.output ?? []).map(rename);
      n.name = p + (n.name || n.opType);
      nodes.push(n);
    }
    const first = graph.output?.[0]?.name;
    if (!first) throw exportError(`member ${i + 1}: the model has no output`);
    let out = rename(first);
    if (m.logits && o.task === 'classification') {
      nodes.push(node('Softmax', [out], [`${p}softmax`], `${p}vote/softmax`, [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 })]));
      out = `${p}softmax`;
    }
    if (!uniform) {
      initializers.push(floats(`${p}vote/weight`, [m.weight / total], []));
      nodes.push(node('Mul', [out, `${p}vote/weight`], [`${p}vote/weighted`], `${p}vote/mul`));
      out = `${p}vote/weighted`;
    }
    voted.push(out);
  });
  nodes.push(node(uniform ? 'Mean' : 'Sum', voted, [o.outputName], uniform ? 'vote/mean' : 'vote/sum'));

  const valueInfo = (name: string, dims: (number | string)[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
    });
  const model: ModelProto = onnx.ModelProto.create({
    irVersion: Math.max(...decoded.map((d) => num(d.irVersion))),
    producerName: 'edgeloop',
    docString: `soft-voting ensemble of ${members.length} models`,
    opsetImport: [...opsets].map(([domain, version]) => ({ domain, version })),
    graph: onnx.GraphProto.create({
      name: 'ensemble',
      node: nodes,
      initializer: initializers,
      input: [valueInfo(o.inputName, ['batch', ...o.inputShape])],
      output: [valueInfo(o.outputName, ['batch', o.outputWidth])],
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}
