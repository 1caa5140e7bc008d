import onnxProto from 'onnx-proto';
import { EdgeloopError } from '../errors.js';

// onnx-proto is CommonJS: the `onnx` namespace is on the default export (see training/onnx/onnx-writer.ts).
const { onnx } = onnxProto;
type NodeProto = import('onnx-proto').onnx.INodeProto;

/** A softmax dense head: weights [embedding, classes] row-major, bias [classes]. */
export interface DenseHead {
  kernel: Float32Array;
  bias: Float32Array;
  embedding: number;
  classes: number;
}

const fail = (m: string) => new EdgeloopError('EDGELOOP_FINETUNE_FAILED', m);

/**
 * One ONNX graph: the frozen backbone (the parent's graph up to its `embedding` output) and a
 * new softmax dense head on that embedding, producing `outputName`; the `embedding` output is
 * kept, so the candidate can be fine-tuned the same way again. The parent's old head is pruned
 * (nodes nothing needs any more are dropped, with their initializers).
 */
export function attachHead(parent: Uint8Array, head: DenseHead, o: { outputName: string; embeddingName: string }): Uint8Array {
  const model = onnx.ModelProto.decode(parent);
  const graph = model.graph;
  if (!graph) throw fail('the parent ONNX model has no graph');
  const embOut = (graph.output ?? []).find((v) => v.name === o.embeddingName);
  if (!embOut) throw fail(`the parent ONNX model has no '${o.embeddingName}' output`);
  const p = 'finetune_head/';
  const kernel = `${p}kernel`;
  const bias = `${p}bias`;
  // Tensors named like the new output are renamed so the head's output name is free.
  const taken = o.outputName;
  for (const n of graph.node ?? []) {
    n.input = (n.input ?? []).map((i) => (i === taken ? `${p}parent_${taken}` : i));
    n.output = (n.output ?? []).map((i) => (i === taken ? `${p}parent_${taken}` : i));
  }
  const f32 = (name: string, data: Float32Array, dims: number[]) => onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) });
  const nodes: NodeProto[] = [
    onnx.NodeProto.create({ name: `${p}matmul`, opType: 'MatMul', input: [o.embeddingName, kernel], output: [`${p}mm`] }),
    onnx.NodeProto.create({ name: `${p}add`, opType: 'Add', input: [`${p}mm`, bias], output: [`${p}logits`] }),
    onnx.NodeProto.create({ name: `${p}softmax`, opType: 'Softmax', input: [`${p}logits`], output: [taken], attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 })] }),
  ];
  const outputs = [
    onnx.ValueInfoProto.create({ name: taken, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: head.classes }] } } } }),
    embOut,
  ];
  const all = [...(graph.node ?? []), ...nodes];
  // Backwards reachability from the outputs: the old head goes.
  const needed = new Set(outputs.map((v) => v.name ?? ''));
  const keep: NodeProto[] = [];
  for (let i = all.length - 1; i >= 0; i--) {
    const n = all[i];
    if (!(n.output ?? []).some((t) => needed.has(t))) continue;
    keep.unshift(n);
    for (const t of n.input ?? []) needed.add(t);
  }
  graph.node = keep as typeof graph.node;
  graph.initializer = [...(graph.initializer ?? []).filter((t) => needed.has(t.name ?? '')), f32(kernel, head.kernel, [head.embedding, head.classes]), f32(bias, head.bias, [head.classes])];
  graph.output = outputs;
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => needed.has(v.name ?? ''));
  model.docString = `${model.docString ?? ''} + fine-tuned softmax head on '${o.embeddingName}'`.trim();
  return onnx.ModelProto.encode(model).finish();
}
