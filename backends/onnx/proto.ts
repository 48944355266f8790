import { endianness } from "node:os";
import onnxProto, { type onnx as Proto } from "onnx-proto";
import type { DType } from "../../src/ir/dtype.js";
import type { HostTensor } from "../../src/ir/tensor.js";

/**
 * A small, typed way to write an ONNX graph with onnx-proto: value names are allocated
 * here (so no two nodes ever write the same name), initializers carry their bytes as
 * raw_data (little-endian, as ONNX requires), and attributes are plain JS values.
 */
const { onnx } = onnxProto;

/** ONNX's opset this backend writes: LayerNormalization needs 17; ORT 1.30 runs it natively. */
export const OPSET = 17;
/** IR version 8 is the one that goes with opset 17 (and the newest onnx-proto knows). */
export const IR_VERSION = 8;

/** Element types used in the lowered graphs. */
export type ElemType = "float" | "int32" | "int64" | "bool";

/** Element types of initializers: also int8 / uint8 (quantised linear weights, quantized.ts). */
export type InitializerElem = ElemType | "int8" | "uint8";

const ELEM: Readonly<Record<InitializerElem, number>> = {
  float: onnx.TensorProto.DataType.FLOAT,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  int8: onnx.TensorProto.DataType.INT8,
  uint8: onnx.TensorProto.DataType.UINT8,
};

/** The ONNX element type of a sprig dtype: i32 stays int32 (converted only where ONNX needs int64). */
export function elemOf(dtype: DType): ElemType {
  return dtype === "f32" ? "float" : "int32";
}

export type AttrValue =
  | number
  | readonly number[]
  | string
  | { readonly floats: readonly number[] };

/** Attributes by name; integers are written as INT(S), `{ float: x }` as FLOAT. */
export type Attrs = Readonly<Record<string, AttrValue | { readonly float: number }>>;

const LITTLE_ENDIAN = endianness() === "LE";

/** Initializer bytes allowed in one serialized model (protobuf messages stop at 2 GiB). */
export const MAX_MODEL_BYTES = 2 ** 31 - 2 ** 26;

function bytesOf(
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array,
): Uint8Array {
  if (!LITTLE_ENDIAN && data.BYTES_PER_ELEMENT > 1) {
    // ONNX raw_data is little-endian; swap on big-endian hosts.
    const out = new Uint8Array(data.byteLength);
    const view = new DataView(out.buffer);
    const width = data.BYTES_PER_ELEMENT;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (data instanceof Float32Array) view.setFloat32(i * width, v as number, true);
      else if (data instanceof Int32Array) view.setInt32(i * width, v as number, true);
      else view.setBigInt64(i * width, v as bigint, true);
    }
    return out;
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function attribute(name: string, value: Attrs[string]): Proto.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === "string") {
    return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  }
  if (typeof value === "number") {
    if (!Number.isInteger(value))
      throw new RangeError(`attribute ${name}: ${value} is not an integer`);
    return { name, type: T.INT, i: value };
  }
  if ("float" in value) return { name, type: T.FLOAT, f: value.float };
  if ("floats" in value) return { name, type: T.FLOATS, floats: [...value.floats] };
  return { name, type: T.INTS, ints: [...value] };
}

function valueInfo(
  name: string,
  elem: InitializerElem,
  shape: readonly number[],
): Proto.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: { elemType: ELEM[elem], shape: { dim: shape.map((d) => ({ dimValue: d })) } },
    },
  };
}

/** Bytes of `value` as a protobuf varint. */
function varintLength(value: number): number {
  let n = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 0x80)) n++;
  return n;
}

export class OnnxGraphWriter {
  private readonly nodes: Proto.INodeProto[] = [];
  private readonly initializers: {
    readonly name: string;
    readonly dims: readonly number[];
    readonly dataType: number;
    readonly raw: Uint8Array;
  }[] = [];
  private readonly inputs: Proto.IValueInfoProto[] = [];
  private readonly outputs: Proto.IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  /** Small constants by content, so repeated shape and axis vectors are written once. */
  private readonly constants = new Map<string, string>();
  /** Operator domains besides ONNX's own that nodes use (ORT's "com.microsoft": version 1). */
  private readonly domains = new Set<string>();
  private counter = 0;
  private initializerBytes = 0;

  constructor(readonly name: string) {}

  /** Claims `name` exactly (graph inputs and outputs keep their sprig names); false if taken. */
  reserve(name: string): boolean {
    if (this.used.has(name)) return false;
    this.used.add(name);
    return true;
  }

  /** A fresh value name starting with `base`. */
  fresh(base: string): string {
    if (this.reserve(base)) return base;
    for (;;) {
      const candidate = `${base}#${this.counter++}`;
      if (this.reserve(candidate)) return candidate;
    }
  }

  /** Declares a graph input whose name was reserved. */
  addInput(name: string, elem: ElemType, shape: readonly number[]): void {
    this.inputs.push(valueInfo(name, elem, shape));
  }

  /** Declares a graph output (the value must be produced under exactly this name). */
  addOutput(name: string, elem: ElemType, shape: readonly number[]): void {
    this.outputs.push(valueInfo(name, elem, shape));
  }

  /**
   * An initializer holding `data` with the given shape; returns its (fresh) name. An
   * `overridable` one is also a graph input (with this default), which runtimes treat as
   * non-constant: ORT then never constant-folds the nodes reading it.
   */
  initializer(
    base: string,
    elem: InitializerElem,
    shape: readonly number[],
    data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array,
    options: { readonly overridable?: boolean } = {},
  ): string {
    const name = this.fresh(base);
    const rawData = bytesOf(data);
    this.initializers.push({ name, dims: [...shape], dataType: ELEM[elem], raw: rawData });
    this.initializerBytes += rawData.byteLength;
    if (options.overridable) this.inputs.push(valueInfo(name, elem, shape));
    return name;
  }

  /** A sprig host tensor as an initializer (i32 stays int32). */
  tensor(base: string, value: HostTensor): string {
    return this.initializer(base, elemOf(value.dtype), value.shape, value.data);
  }

  /** An int64 constant (shapes, axes, indices), shared between identical uses. */
  i64(values: readonly number[], shape: readonly number[] = [values.length]): string {
    const key = values.length <= 64 ? `i64:${shape.join(",")}:${values.join(",")}` : null;
    const known = key === null ? undefined : this.constants.get(key);
    if (known !== undefined) return known;
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    const name = this.initializer("const.i64", "int64", shape, data);
    if (key !== null) this.constants.set(key, name);
    return name;
  }

  /** An int32 constant. */
  i32(values: ArrayLike<number>, shape: readonly number[]): string {
    return this.initializer("const.i32", "int32", shape, Int32Array.from(values));
  }

  /** A float32 constant; scalars (shape []) are shared between identical uses. */
  f32(values: ArrayLike<number>, shape: readonly number[] = []): string {
    const key = shape.length === 0 ? `f32::${values[0]}` : null;
    const known = key === null ? undefined : this.constants.get(key);
    if (known !== undefined) return known;
    const name = this.initializer("const.f32", "float", shape, Float32Array.from(values));
    if (key !== null) this.constants.set(key, name);
    return name;
  }

  /** A bool constant. */
  bool(values: ArrayLike<boolean>, shape: readonly number[]): string {
    return this.initializer(
      "const.bool",
      "bool",
      shape,
      Uint8Array.from(Array.from(values, (v) => (v ? 1 : 0))),
    );
  }

  /**
   * Appends a node. `outputs` are either names (used as given; they must be fresh or
   * reserved by the caller) or a count of fresh names derived from `base`. Returns the
   * output names. An empty input name is ONNX's "optional input absent".
   */
  node(
    opType: string,
    inputs: readonly string[],
    options: {
      readonly attrs?: Attrs;
      readonly outputs?: number | readonly string[];
      readonly base?: string;
      readonly domain?: string;
    } = {},
  ): string[] {
    const base = options.base ?? opType;
    const outputs =
      typeof options.outputs === "object"
        ? [...options.outputs]
        : Array.from({ length: options.outputs ?? 1 }, () => this.fresh(base));
    const attrs = options.attrs ?? {};
    if (options.domain !== undefined && options.domain !== "") this.domains.add(options.domain);
    this.nodes.push({
      opType,
      domain: options.domain ?? "",
      name: this.fresh(`node/${base}`),
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attrs).map(([key, value]) => attribute(key, value)),
    });
    return outputs;
  }

  /** Like `node` for single-output ops. */
  op(opType: string, inputs: readonly string[], attrs?: Attrs, base?: string): string {
    return this.node(opType, inputs, {
      ...(attrs === undefined ? {} : { attrs }),
      ...(base === undefined ? {} : { base }),
    })[0]!;
  }

  /** The serialized ModelProto; a RangeError past protobuf's 2 GiB message limit. */
  encode(docString: string): Uint8Array {
    // Leave room for the graph structure next to the initializers.
    if (this.initializerBytes > MAX_MODEL_BYTES) {
      throw new RangeError(
        `model needs ${(this.initializerBytes / 2 ** 20).toFixed(0)} MiB of initializers; an ONNX protobuf holds at most 2 GiB`,
      );
    }
    // Initializers (hundreds of MB) are framed by hand so their raw data is copied once,
    // into one buffer of the final size, rather than through protobufjs's writer:
    // ModelProto field 7 (graph) = GraphProto without initializers, then one field 5 per
    // initializer = TensorProto without raw_data, then its field 9 (raw_data). Protobuf
    // readers accept fields in any order.
    const head = onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: IR_VERSION,
        producerName: "sprig",
        producerVersion: "0.1.0",
        docString,
        opsetImport: [
          { domain: "", version: OPSET },
          ...[...this.domains].map((domain) => ({ domain, version: 1 })),
        ],
      }),
    ).finish();
    const graph = onnx.GraphProto.encode(
      onnx.GraphProto.create({
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
      }),
    ).finish();
    const tensors = this.initializers.map((t) => {
      const meta = onnx.TensorProto.encode(
        onnx.TensorProto.create({ name: t.name, dims: [...t.dims], dataType: t.dataType }),
      ).finish();
      const rawField = 1 + varintLength(t.raw.byteLength) + t.raw.byteLength;
      return { meta, raw: t.raw, length: meta.byteLength + rawField };
    });
    let graphLength = graph.byteLength;
    for (const t of tensors) graphLength += 1 + varintLength(t.length) + t.length;
    const out = new Uint8Array(head.byteLength + 1 + varintLength(graphLength) + graphLength);
    let at = 0;
    const put = (bytes: Uint8Array): void => {
      out.set(bytes, at);
      at += bytes.byteLength;
    };
    const tag = (field: number): void => {
      out[at++] = (field << 3) | 2; // wire type 2: length-delimited
    };
    const varint = (value: number): void => {
      let v = value;
      while (v >= 0x80) {
        out[at++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
      }
      out[at++] = v;
    };
    put(head);
    tag(7);
    varint(graphLength);
    put(graph);
    for (const t of tensors) {
      tag(5);
      varint(t.length);
      put(t.meta);
      tag(9);
      varint(t.raw.byteLength);
      put(t.raw);
    }
    return out;
  }
}
