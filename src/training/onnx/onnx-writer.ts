import onnxProto from 'onnx-proto';

// onnx-proto is CommonJS with `module.exports = $root`; Node's ESM loader cannot see the
// `onnx` named export, so it is taken from the default (module.exports) object.
const { onnx } = onnxProto;

/** ONNX opset of the default domain that every graph built here targets. */
export const OPSET_VERSION = 17;
/** onnxruntime's contrib-op domain (QGemm, ...) and the opset version imported when a graph uses it. */
export const MS_DOMAIN = 'com.microsoft';
const MS_OPSET_VERSION = 1;
/** IR version 8 is what opset 17 models are written with (onnx 1.12+). */
export const IR_VERSION = 8;
/** ModelProto.producer_name of every model written here. */
export const PRODUCER_NAME = 'edgeloop';

/** Element types the writer can store as initializers or declare as graph inputs/outputs. */
export type OnnxElemType = 'float32' | 'int8' | 'uint8' | 'int32' | 'int64';

/** TensorProto.DataType codes of the element types above. */
export const ELEM_TYPE: Record<OnnxElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
};

/** A node attribute value; numbers are ints unless wrapped with {@link floatAttr}. */
export type AttrValue = number | number[] | string | FloatAttr;

/** Marks an attribute as FLOAT / FLOATS (plain numbers are written as INT / INTS). */
export interface FloatAttr {
  floats: number | number[];
}

/** Wrap a number (or list) so it is written as a FLOAT (FLOATS) attribute. */
export function floatAttr(value: number | number[]): FloatAttr {
  return { floats: value };
}

/** A graph input or output: name, element type and shape ('batch'-style strings are dynamic). */
export interface ValueInfo {
  name: string;
  elemType: OnnxElemType;
  shape: ReadonlyArray<number | string>;
}

type InitData = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array | readonly number[];

/**
 * A small ONNX graph builder: initializers, nodes, typed inputs and outputs, then
 * {@link OnnxGraphBuilder.encode} to the protobuf bytes onnxruntime loads.
 */
export class OnnxGraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly used = new Set<string>();
  /** Non-default operator domains used by the nodes (each gets an opset import). */
  private readonly domains = new Set<string>();

  constructor(private readonly graphName = 'edgeloop') {}

  /** A tensor name not used yet in this graph, derived from `prefix`. */
  uniqueName(prefix: string): string {
    const base = prefix.replace(/[^A-Za-z0-9_./-]/g, '_') || 't';
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  /**
   * Add a constant tensor. Values are written little-endian into raw_data whatever the host
   * byte order, as the ONNX spec requires. Returns the (possibly de-duplicated) name.
   */
  addInitializer(name: string, elemType: OnnxElemType, dims: readonly number[], data: InitData): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims.join(', ')}]`);
    const unique = this.uniqueName(name);
    this.initializers.push(
      onnx.TensorProto.create({ name: unique, dataType: ELEM_TYPE[elemType], dims: [...dims], rawData: toRawData(elemType, data) }),
    );
    return unique;
  }

  /** A float32 initializer from plain numbers; dims default to a 1-D vector. */
  addFloats(name: string, values: readonly number[] | Float32Array, dims: readonly number[] = [values.length]): string {
    return this.addInitializer(name, 'float32', dims, values);
  }

  /** An int64 initializer, e.g. a Reshape target shape or a Transpose-free axes list. */
  addInt64s(name: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.addInitializer(name, 'int64', dims, values);
  }

  /**
   * Add a node, of the default domain unless `domain` names another (e.g. {@link MS_DOMAIN}).
   * Empty strings in `inputs` mark omitted optional inputs. Returns the output names (created
   * from the op type when `outputs` is a count).
   */
  addNode(opType: string, inputs: readonly string[], outputs: readonly string[] | number = 1, attrs: Record<string, AttrValue> = {}, domain = ''): string[] {
    if (domain) this.domains.add(domain);
    let outNames: string[];
    if (typeof outputs === 'number') {
      outNames = Array.from({ length: outputs }, (_, i) => this.uniqueName(`${opType.toLowerCase()}${outputs > 1 ? `_o${i}` : ''}`));
    } else {
      outNames = [...outputs];
      for (const o of outNames) this.used.add(o);
    }
    this.nodes.push(
      onnx.NodeProto.create({
        name: this.uniqueName(`node_${opType}`),
        opType,
        ...(domain ? { domain } : {}),
        input: [...inputs],
        output: outNames,
        attribute: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
      }),
    );
    return outNames;
  }

  /** Declare a graph input; the name is reserved so generated names never collide with it. */
  addInput(info: ValueInfo): string {
    this.used.add(info.name);
    this.inputs.push(toValueInfo(info));
    return info.name;
  }

  /** Declare a graph output; some node must produce a tensor of this name. */
  addOutput(info: ValueInfo): string {
    this.used.add(info.name);
    this.outputs.push(toValueInfo(info));
    return info.name;
  }

  /** The ModelProto (opset 17, plus com.microsoft 1 when used; IR 8, producer 'edgeloop'). */
  toModelProto(docString?: string): InstanceType<typeof onnx.ModelProto> {
    return onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: PRODUCER_NAME,
      opsetImport: [{ domain: '', version: OPSET_VERSION }, ...[...this.domains].map((domain) => ({ domain, version: domain === MS_DOMAIN ? MS_OPSET_VERSION : 1 }))],
      docString: docString ?? '',
      graph: onnx.GraphProto.create({
        name: this.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      }),
    });
  }

  /** Serialised model bytes, ready for `InferenceSession.create(bytes)` or a .onnx file. */
  encode(docString?: string): Uint8Array {
    return onnx.ModelProto.encode(this.toModelProto(docString)).finish();
  }
}

function toRawData(elemType: OnnxElemType, data: InitData): Uint8Array {
  if (elemType === 'int8' || elemType === 'uint8') {
    const out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]) & 0xff;
    return out;
  }
  const size = elemType === 'int64' ? 8 : 4;
  const out = new Uint8Array(data.length * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (elemType === 'float32') view.setFloat32(i * 4, Number(v), true);
    else if (elemType === 'int32') view.setInt32(i * 4, Number(v), true);
    else view.setBigInt64(i * 8, BigInt(v), true);
  }
  return out;
}

function toAttribute(name: string, value: AttrValue): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(value) });
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer; wrap floats with floatAttr()`);
    return onnx.AttributeProto.create({ name, type: T.INT, i: value });
  }
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: T.INTS, ints: value });
  const f = (value as FloatAttr).floats;
  return Array.isArray(f)
    ? onnx.AttributeProto.create({ name, type: T.FLOATS, floats: f })
    : onnx.AttributeProto.create({ name, type: T.FLOAT, f });
}

function toValueInfo(info: ValueInfo): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name: info.name,
    type: {
      tensorType: {
        elemType: ELEM_TYPE[info.elemType],
        shape: { dim: info.shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
}
