import { BackendError } from "../../src/ir/errors.js";
import {
  type AnyNode,
  type Graph,
  type Node,
  nodeLabel,
  refKey,
  type TensorRef,
} from "../../src/ir/graph.js";
import type { OpKind } from "../../src/ir/ops/index.js";
import { type HostTensor, numElements, type TensorType } from "../../src/ir/tensor.js";
import { lowerAttention, lowerBlockSparseAttention } from "./attention.js";
import { Emitter } from "./emit.js";
import { elemOf, OnnxGraphWriter } from "./proto.js";
import { lowerQuantizedLinear, lowerWeightScales } from "./quantized.js";
import { FOLD_MODEL_BYTES } from "./relpos.js";
import {
  lowerAdditiveMask,
  lowerEmbedding,
  lowerL2Normalize,
  lowerSelectBatch,
  lowerSimilarity,
  lowerSlice,
} from "./text.js";

/**
 * Lowering of a sprig graph to one ONNX graph. Each op kind has a lowering that appends
 * ONNX nodes for one sprig node and returns the ONNX values of its outputs, in the order
 * of `node.outputs`. Values keep sprig's element types (f32 → float, i32 → int32); int64
 * appears only inside lowerings, where an ONNX op produces it (TopK), and is cast back.
 */
export interface LowerOptions {
  /**
   * Use onnxruntime's com.microsoft MultiHeadAttention for attention (faster; the model
   * then needs onnxruntime). false: standard ONNX ops only.
   */
  readonly contribOps: boolean;
  /** Largest bias computed while building (relpos.ts), in bytes. */
  readonly foldTensorBytes: number;
}

export interface LowerContext {
  readonly node: AnyNode;
  /** The graph being lowered (lowerings that fuse a node with its siblings read it). */
  readonly graph: Graph;
  readonly options: LowerOptions;
  readonly e: Emitter;
  /** The ONNX value of input `i`. */
  input(i: number): string;
  /** A key naming the tensor input `i` reads (for memos). */
  inputKey(i: number): string;
  /** The static type of input `i`. */
  inputType(i: number): TensorType;
  /** The host value of input `i` when it is a weight or constant (known when building). */
  known(i: number): HostTensor | null;
  /** The bound value of a weight, by name. */
  weight(name: string): HostTensor;
  /**
   * ONNX values shared by several nodes (e.g. one relative-position index for every layer
   * reading the same token index): `make` runs once per key and graph.
   */
  memo(key: string, make: () => string): string;
  /**
   * Whether a tensor of `bytes` may be computed while building and stored in the model
   * (relpos.ts); claims the bytes from the model's budget when it may.
   */
  claimFold(bytes: number): boolean;
  /** Throws a BackendError naming the node. */
  fail(detail: string): never;
}

export type Lowering<K extends OpKind> = (node: Node<K>, ctx: LowerContext) => readonly string[];

function shapeOf(ctx: LowerContext, i: number): readonly number[] {
  return ctx.inputType(i).shape;
}

// ---- sources --------------------------------------------------------------------------------

/** Graph input: declared under its sprig name (reserved by the driver). */
const input: Lowering<"input"> = (node, ctx) => {
  const { name, type } = node.attrs;
  ctx.e.w.addInput(name, elemOf(type.dtype), type.shape);
  return [name];
};

/** Parameter: an initializer named by its state_dict key. */
const weight: Lowering<"weight"> = (node, ctx) => [
  ctx.e.w.tensor(node.attrs.name, ctx.weight(node.attrs.name)),
];

const constant: Lowering<"constant"> = (node, ctx) => [
  ctx.e.w.tensor(`const:${node.attrs.name}`, node.attrs.value),
];

// ---- dense math -----------------------------------------------------------------------------

/**
 * linear, y = x Wᵀ + b: one Gemm (transB = 1, so W stays [out, in]) on x viewed as the 2-D
 * [rows, in] matrix, which runs at 2-D matmul speed with the bias fused; reshaped back.
 */
const linear: Lowering<"linear"> = (node, ctx) => {
  const { e } = ctx;
  const xShape = shapeOf(ctx, 0);
  const width = xShape.at(-1)!;
  const out = shapeOf(ctx, 1)[0]!;
  const lead = xShape.slice(0, -1);
  const rows = numElements(lead);
  const x2 = xShape.length === 2 ? ctx.input(0) : e.reshape(ctx.input(0), [rows, width]);
  const inputs = [x2, ctx.input(1)];
  if (node.inputs.length > 2) inputs.push(ctx.input(2));
  const y = e.op("Gemm", inputs, { transB: 1 });
  return [xShape.length === 2 ? y : e.reshape(y, [...lead, out])];
};

const add: Lowering<"add"> = (_node, ctx) => [ctx.e.add(ctx.input(0), ctx.input(1))];
const mul: Lowering<"mul"> = (_node, ctx) => [ctx.e.mul(ctx.input(0), ctx.input(1))];

/** gelu(x) = x · (1 + erf(x / √2)) / 2, written as the pattern ORT fuses into one Gelu kernel. */
const gelu: Lowering<"gelu"> = (_node, ctx) => {
  const { e } = ctx;
  const x = ctx.input(0);
  const erf = e.op("Erf", [e.div(x, e.float(Math.SQRT2))]);
  return [e.mul(e.mul(x, e.add(erf, e.float(1))), e.float(0.5))];
};

/** LayerNormalization (opset 17) over the last axis: (x - μ) / √(σ² + eps) · γ + β. */
const layerNorm: Lowering<"layerNorm"> = (node, ctx) => [
  ctx.e.op("LayerNormalization", [ctx.input(0), ctx.input(1), ctx.input(2)], {
    axis: -1,
    epsilon: { float: node.attrs.eps },
  }),
];

const reshape: Lowering<"reshape"> = (node, ctx) => [ctx.e.reshape(ctx.input(0), node.attrs.shape)];

// ---- embedding and pooling ------------------------------------------------------------------

/**
 * patchEmbed: frames as a batch of images [B·T, Cin, H, W], one Conv with kernel = stride
 * = p and the bias, giving [B·T, C, hp, wp]; then patches row-major per frame:
 * [B, T, C, hp·wp] → transpose → [B, T, hp·wp, C] → [B, T·hp·wp, C].
 */
const patchEmbed: Lowering<"patchEmbed"> = (node, ctx) => {
  const { e } = ctx;
  const [batch, frames, cin, height, width] = shapeOf(ctx, 0) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const p = node.attrs.patchSize;
  const hidden = shapeOf(ctx, 1)[0]!;
  const patches = (height / p) * (width / p);
  const images = e.reshape(ctx.input(0), [batch * frames, cin, height, width]);
  const conv = e.op("Conv", [images, ctx.input(1), ctx.input(2)], {
    kernel_shape: [p, p],
    strides: [p, p],
  });
  const grouped = e.reshape(conv, [batch, frames, hidden, patches]);
  return [e.reshape(e.transpose(grouped, [0, 1, 3, 2]), [batch, frames * patches, hidden])];
};

/** prependTokens: Concat along tokens, broadcasting a batch-1 side to the output batch. */
const prependTokens: Lowering<"prependTokens"> = (node, ctx) => {
  const { e } = ctx;
  const batch = node.outputs[0]!.shape[0]!;
  const side = (i: number): string => {
    const shape = shapeOf(ctx, i);
    return shape[0] === batch ? ctx.input(i) : e.expand(ctx.input(i), [batch, ...shape.slice(1)]);
  };
  return [e.concat([side(0), side(1)], 1)];
};

/** meanTokens: ReduceMean over tokens skip..N-1. */
const meanTokens: Lowering<"meanTokens"> = (node, ctx) => {
  const { e } = ctx;
  const tokens = shapeOf(ctx, 0)[1]!;
  const { skip } = node.attrs;
  const kept = skip === 0 ? ctx.input(0) : e.slice(ctx.input(0), [skip], [tokens], [1]);
  return [e.reduceMean(kept, [1], false)];
};

// ---- token selection ------------------------------------------------------------------------

/** tokenScores: probs[:, :, row, skip:] averaged over heads → [B, K - skip]. */
const tokenScores: Lowering<"tokenScores"> = (node, ctx) => {
  const { e } = ctx;
  const keys = shapeOf(ctx, 0)[3]!;
  const { row, skip } = node.attrs;
  const rowProbs = e.slice(ctx.input(0), [row, skip], [row + 1, keys], [2, 3]);
  return [e.reduceMean(rowProbs, [1, 2], false)];
};

/**
 * topK: TopK (largest, sorted; ONNX breaks ties towards the lower index, as the op does)
 * gives the kept indices in score order; a second TopK over those indices (smallest
 * first) sorts them ascending exactly. int64 → int32 at the end.
 */
const topK: Lowering<"topK"> = (node, ctx) => {
  const { e } = ctx;
  const k = e.w.i64([node.attrs.k]);
  const [, byScore] = e.w.node("TopK", [ctx.input(0), k], {
    attrs: { axis: -1, largest: 1, sorted: 1 },
    outputs: 2,
    base: `${e.base}/TopK`,
  });
  const [ascending] = e.w.node("TopK", [byScore!, k], {
    attrs: { axis: -1, largest: 0, sorted: 1 },
    outputs: 2,
    base: `${e.base}/Sort`,
  });
  return [e.cast(ascending!, "int32")];
};

/**
 * gather along axis a ≥ 1 with idx [Bi, k] keeping a prefix of P entries:
 *   src = [0 .. P-1, P + idx[b]]   (per batch row of the indices)
 * Shared indices (Bi = 1): one Gather on axis a. Per-row indices (Bi > 1): x is flattened
 * to rows [Bx·O·D, I] (O = product of axes 1..a-1, I = product after a) and row
 * ((b' · O + o) · D + src[b, p]) is taken for every (b, o, p), b' = b or 0 when Bx = 1.
 */
const gather: Lowering<"gather"> = (node, ctx) => {
  const { e } = ctx;
  const { axis, keepPrefix } = node.attrs;
  const xShape = shapeOf(ctx, 0);
  const [idxBatch, k] = shapeOf(ctx, 1) as [number, number];
  const outShape = node.outputs[0]!.shape;
  let src = ctx.input(1);
  if (keepPrefix > 0) {
    const prefix = e.w.i32(
      Array.from({ length: idxBatch * keepPrefix }, (_, i) => i % keepPrefix),
      [idxBatch, keepPrefix],
    );
    src = e.concat([prefix, e.add(src, e.int(keepPrefix))], 1);
  }
  const kept = keepPrefix + k;
  if (idxBatch === 1) {
    const flat = e.reshape(src, [kept]);
    const gathered = e.gather(ctx.input(0), flat, axis);
    const batch = outShape[0]!;
    return [xShape[0] === batch ? gathered : e.expand(gathered, outShape)];
  }
  const xBatch = xShape[0]!;
  const size = xShape[axis]!;
  const outer = numElements(xShape.slice(1, axis));
  const inner = numElements(xShape.slice(axis + 1));
  const bases = new Int32Array(idxBatch * outer);
  for (let b = 0; b < idxBatch; b++) {
    for (let o = 0; o < outer; o++)
      bases[b * outer + o] = ((xBatch === 1 ? 0 : b) * outer + o) * size;
  }
  const rows = e.add(e.w.i32(bases, [idxBatch, outer, 1]), e.reshape(src, [idxBatch, 1, kept]));
  const table = e.reshape(ctx.input(0), [xBatch * outer * size, inner]);
  return [e.reshape(e.gather(table, rows, 0), outShape)];
};

/**
 * The lowering of every op kind: a mapped type over OpKind, so a new op kind fails to
 * type-check until it is lowered here.
 */
export const LOWERINGS: { readonly [K in OpKind]: Lowering<K> } = {
  input,
  weight,
  constant,
  linear,
  add,
  mul,
  gelu,
  layerNorm,
  reshape,
  patchEmbed,
  prependTokens,
  meanTokens,
  attention: lowerAttention,
  blockSparseAttention: lowerBlockSparseAttention,
  embedding: lowerEmbedding,
  additiveMask: lowerAdditiveMask,
  l2Normalize: lowerL2Normalize,
  similarity: lowerSimilarity,
  selectBatch: lowerSelectBatch,
  slice: lowerSlice,
  weightScales: lowerWeightScales,
  quantizedLinear: lowerQuantizedLinear,
  tokenScores,
  topK,
  gather,
};

function lowerNode<K extends OpKind>(node: Node<K>, ctx: LowerContext): readonly string[] {
  const lowering: Lowering<K> = LOWERINGS[node.op];
  return lowering(node, ctx);
}

/**
 * Writes `graph` as an ONNX graph with `weights` (already bound and checked) as
 * initializers. Graph inputs and outputs keep their sprig names.
 */
export function lowerGraph(
  graph: Graph,
  weights: ReadonlyMap<string, HostTensor>,
  options: LowerOptions,
): OnnxGraphWriter {
  const w = new OnnxGraphWriter(graph.name);
  const inputNames = new Map<string, number>();
  for (const node of graph.nodes) {
    if (node.op !== "input") continue;
    if (!w.reserve(node.attrs.name)) {
      throw new BackendError(
        `onnx: ${nodeLabel(node)}: input name "${node.attrs.name}" is used twice`,
      );
    }
    inputNames.set(node.attrs.name, node.id);
  }
  for (const { name, ref } of graph.outputs) {
    const passThrough = inputNames.get(name) === ref.node && ref.output === 0;
    if (!passThrough && !w.reserve(name)) {
      throw new BackendError(
        `onnx: graph output "${name}" clashes with another input or output name`,
      );
    }
  }
  const values: (readonly string[] | undefined)[] = [];
  // Weights and constants become initializers only when a node reads them: a bias computed
  // while building (relpos.ts) leaves its table and token index unread.
  const deferred = new Map<number, () => readonly string[]>();
  const onnxValue = (ref: TensorRef): string | undefined => {
    const make = deferred.get(ref.node);
    if (make !== undefined) {
      deferred.delete(ref.node);
      values[ref.node] = make();
    }
    return values[ref.node]?.[ref.output];
  };
  const shared = new Map<string, string>();
  let foldBudget = FOLD_MODEL_BYTES;
  const claimFold = (bytes: number): boolean => {
    if (bytes > options.foldTensorBytes || bytes > foldBudget) return false;
    foldBudget -= bytes;
    return true;
  };
  const memo = (key: string, make: () => string): string => {
    let value = shared.get(key);
    if (value === undefined) {
      value = make();
      shared.set(key, value);
    }
    return value;
  };
  for (const node of graph.nodes) {
    const label = nodeLabel(node);
    const fail = (detail: string): never => {
      throw new BackendError(`onnx: cannot lower ${label}: ${detail}`);
    };
    const ctx: LowerContext = {
      node,
      graph,
      options,
      e: new Emitter(w, `%${node.id}`),
      input: (i) => {
        const ref = node.inputs[i];
        const value = ref === undefined ? undefined : onnxValue(ref);
        if (value === undefined) {
          return fail(`input ${i} (${ref ? refKey(ref) : "absent"}) has no value`);
        }
        return value;
      },
      inputKey: (i) => {
        const ref = node.inputs[i];
        return ref === undefined ? fail(`has no input ${i}`) : refKey(ref);
      },
      inputType: (i) => {
        const ref = node.inputs[i];
        const type = ref === undefined ? undefined : graph.nodes[ref.node]?.outputs[ref.output];
        if (type === undefined) return fail(`input ${i} has no type`);
        return type;
      },
      known: (i) => {
        const ref = node.inputs[i];
        const source = ref === undefined ? undefined : graph.nodes[ref.node];
        if (source?.op === "weight") return weights.get(source.attrs.name) ?? null;
        if (source?.op === "constant") return source.attrs.value;
        return null;
      },
      weight: (name) => weights.get(name) ?? fail(`weight "${name}" is not bound`),
      memo,
      claimFold,
      fail,
    };
    const lower = (): readonly string[] => {
      let outputs: readonly string[];
      try {
        outputs = lowerNode(node, ctx);
      } catch (error) {
        if (error instanceof BackendError) throw error;
        throw new BackendError(`onnx: cannot lower ${label}: ${(error as Error).message}`);
      }
      if (outputs.length !== node.outputs.length) {
        fail(`lowering produced ${outputs.length} values for ${node.outputs.length} outputs`);
      }
      return outputs;
    };
    if (node.op === "weight" || node.op === "constant") deferred.set(node.id, lower);
    else values[node.id] = lower();
  }
  for (const { name, ref } of graph.outputs) {
    const value = onnxValue(ref);
    const type = graph.nodes[ref.node]?.outputs[ref.output];
    if (value === undefined || type === undefined) {
      throw new BackendError(`onnx: graph output "${name}" (${refKey(ref)}) has no value`);
    }
    if (value !== name) w.node("Identity", [value], { outputs: [name] });
    w.addOutput(name, elemOf(type.dtype), type.shape);
  }
  return w;
}
