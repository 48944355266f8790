import * as tf from "@tensorflow/tfjs-core";
import { BackendError } from "../../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../../src/ir/graph.js";
import { formatShape } from "../../../src/ir/tensor.js";
import { positionOf } from "../../../src/runtime/inputs.js";
import type { LowerContext, Lowering } from "../types.js";
import { arg, inputRef, inShape, outShape, readF32, readI32, sizeOf } from "../util.js";

/**
 * Text-encoder, fusion and retrieval ops; the formulas are those of src/ir/ops/types.ts.
 * Every op here has a tfjs-core kernel on cpu, wasm, webgl and webgpu (gather, slice, cast,
 * sub, mul, square, sum, sqrt, maximum, div, matMul, transpose; no einsum, which wasm lacks).
 * With the "host" strategy the row copies (embedding of a resident table, selectBatch) run
 * in JS on read-back values, as gather does (tokens.ts: tf.gather on tfjs-wasm costs ~35 ns
 * per element); an embedding of constant ids in a resident table is copied once, at compile
 * time, on every strategy.
 *
 * Run-time index inputs were range-checked before the run (src/runtime/inputs.ts); the host
 * paths check again, for indices computed in the graph, and tf.gather asserts its range on
 * cpu and wasm.
 */

/**
 * out[p, :] = src[idx[p], :] for rows of `item` values: each row one copy. An index outside
 * [0, limit) is a BackendError naming `where` (the node), the index and its position.
 */
function copyRows<T extends Float32Array | Int32Array>(
  where: string,
  src: T,
  idx: HostIndices,
  limit: number,
  item: number,
  out: T,
): T {
  for (let p = 0; p < idx.data.length; p++) {
    const from = idx.data[p]!;
    if (!(from >= 0 && from < limit)) {
      throw new BackendError(
        `${where}: index ${from} at ${formatShape(positionOf(idx.shape, p))} outside [0, ${limit})`,
      );
    }
    out.set(src.subarray(from * item, (from + 1) * item), p * item);
  }
  return out;
}

interface HostIndices {
  readonly shape: readonly number[];
  readonly data: Int32Array;
}

/** The i32 values behind input `index` when a constant (or weight) produces it, claimed. */
function claimIndices(node: Node, index: number, ctx: LowerContext): HostIndices | null {
  const value = ctx.known(inputRef(node, index));
  if (value === null || value.dtype !== "i32") return null;
  ctx.claim(node, index);
  return value;
}

/**
 * embedding: out[b, l] = table[ids[b, l]].
 * - table and ids both constants or weights (BERT's position and token-type embeddings):
 *   the rows are copied once at compile time and the result stays resident.
 * - host, the table a weight or constant: the table stays on the host (never uploaded);
 *   each id's row is copied into the output, which is uploaded once.
 * - otherwise: one tf.gather on axis 0 by the ids flattened to [B·L], reshaped to [B, L, C].
 */
export const embedding: Lowering<"embedding"> = (node, ctx) => {
  const shape = outShape(node);
  const where = `tfjs: ${nodeLabel(node)}`;
  const known = ctx.known(inputRef(node, 0));
  const table = known?.dtype === "f32" ? known : null;
  const fixedIds = table === null ? null : claimIndices(node, 1, ctx);
  if (table !== null && (fixedIds !== null || ctx.strategy === "host")) {
    ctx.claim(node, 0);
    const [rows, width] = table.shape as [number, number];
    const lookUp = (ids: HostIndices) =>
      tf.tensor(
        copyRows(where, table.data, ids, rows, width, new Float32Array(sizeOf(shape))),
        shape,
        "float32",
      );
    if (fixedIds !== null) {
      const resident = ctx.keep(lookUp(fixedIds));
      return () => [resident];
    }
    const idsShape = inShape(ctx.graph, node, 1);
    return (inputs) => [lookUp({ shape: idsShape, data: readI32(arg(inputs, 1)) })];
  }
  return (inputs) => [
    tf.reshape(tf.gather(arg(inputs, 0), tf.reshape(arg(inputs, 1), [-1]), 0), shape),
  ];
};

/**
 * additiveMask: (1 - m) · fill in float32, as PyTorch's `(1.0 - mask.float()) * fill`: m is
 * cast, 1 - m and the product are float32 tensors (exact for a 0/1 mask).
 */
export const additiveMask: Lowering<"additiveMask"> = (node) => {
  const fill = Math.fround(node.attrs.fill);
  return (inputs) => [tf.mul(tf.sub(1, tf.cast(arg(inputs, 0), "float32")), fill)];
};

/** l2Normalize: x / max(√(Σ x²), eps) over the last axis (square, sum, sqrt, maximum, div). */
export const l2Normalize: Lowering<"l2Normalize"> = (node) => (inputs) => {
  const x = arg(inputs, 0);
  const norm = tf.sqrt(tf.sum(tf.square(x), -1, true));
  return [tf.div(x, tf.maximum(norm, node.attrs.eps))];
};

/**
 * similarity: scale · a bᵀ, one 2-D matMul [M, D] x [D, N]. On wasm bᵀ is formed first:
 * tfjs-wasm sends only non-transposed 2-D products to XNNPACK's GEMM (see linear in
 * dense.ts); elsewhere matMul's transposeB costs nothing extra.
 */
export const similarity: Lowering<"similarity"> = (node, ctx) => {
  const { scale } = node.attrs;
  return (inputs) => {
    const a = arg(inputs, 0);
    const b = arg(inputs, 1);
    const product =
      ctx.kind === "wasm" ? tf.matMul(a, tf.transpose(b)) : tf.matMul(a, b, false, true);
    return [tf.mul(product, scale)];
  };
};

/**
 * selectBatch: out[p] = x[idx[p]].
 * - host: x read back (idx too, unless a constant: then it is read at compile time), each
 *   selected batch item copied, the result uploaded.
 * - device: one tf.gather on axis 0.
 */
export const selectBatch: Lowering<"selectBatch"> = (node, ctx) => {
  if (ctx.strategy !== "host") {
    return (inputs) => [tf.gather(arg(inputs, 0), arg(inputs, 1), 0)];
  }
  const shape = outShape(node);
  const xShape = inShape(ctx.graph, node, 0);
  const idxShape = inShape(ctx.graph, node, 1);
  const fixed = claimIndices(node, 1, ctx);
  const batch = xShape[0]!;
  const item = sizeOf(xShape.slice(1));
  const where = `tfjs: ${nodeLabel(node)}`;
  return (inputs) => {
    const x = arg(inputs, 0);
    const idx = fixed ?? { shape: idxShape, data: readI32(arg(inputs, 1)) };
    const size = sizeOf(shape);
    if (x.dtype === "int32") {
      const out = copyRows(where, readI32(x), idx, batch, item, new Int32Array(size));
      return [tf.tensor(out, shape, "int32")];
    }
    const src = readF32(x, ctx.scratch, "selectBatch");
    return [
      tf.tensor(copyRows(where, src, idx, batch, item, new Float32Array(size)), shape, "float32"),
    ];
  };
};

/** slice: tf.slice from `start` on `axis` (0 elsewhere), size = the output shape. */
export const slice: Lowering<"slice"> = (node) => {
  const shape = outShape(node);
  const begin = shape.map((_, axis) => (axis === node.attrs.axis ? node.attrs.start : 0));
  return (inputs) => [tf.slice(arg(inputs, 0), begin, shape)];
};
