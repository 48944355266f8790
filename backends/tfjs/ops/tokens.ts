import * as tf from "@tensorflow/tfjs-core";
import { nodeLabel } from "../../../src/ir/graph.js";
import { gatherRows } from "../../../src/runtime/gather.js";
import type { Lowering } from "../types.js";
import { arg, inShape, outShape, readF32, readI32, sizeOf } from "../util.js";

/**
 * Token selection (node sparsity): scores, top-k and gather. With the "host" strategy the
 * index work happens in JS on read-back values: on tfjs-wasm tf.gather costs ~35 ns per
 * element (its kernel recomputes coordinates per element), so gathering a [B, L, C] hidden
 * state there is slower than one read-back, a row-wise copy and one upload; and top-k in
 * JS follows the reference's tie and NaN rules exactly.
 */

/** tokenScores: scores[b, j] = Σ_h probs[b, h, row, skip + j] / H (a slice and a mean). */
export const tokenScores: Lowering<"tokenScores"> = (node, ctx) => {
  const [batch, heads, , keys] = inShape(ctx.graph, node, 0) as [number, number, number, number];
  const { row, skip } = node.attrs;
  const shape = outShape(node);
  return (inputs) => {
    const rows = tf.slice(arg(inputs, 0), [0, 0, row, skip], [batch, heads, 1, keys - skip]);
    return [tf.reshape(tf.mean(rows, 1), shape)];
  };
};

/**
 * Indices of the k largest of `row`, sorted ascending: ranked by score (larger first),
 * exact ties to the lower index, NaN above every number (the reference's rule).
 */
export function topKRow(row: Float32Array, k: number): Int32Array {
  const order = Array.from({ length: row.length }, (_, i) => i);
  order.sort((x, y) => {
    const sx = row[x]!;
    const sy = row[y]!;
    const nx = Number.isNaN(sx);
    const ny = Number.isNaN(sy);
    if (nx !== ny) return nx ? -1 : 1;
    if (!nx && sx !== sy) return sy > sx ? 1 : -1;
    return x - y;
  });
  return Int32Array.from(order.slice(0, k).sort((x, y) => x - y));
}

/**
 * topK: i32 indices of the k largest scores per row, sorted ascending.
 * - host: topKRow on the read-back scores.
 * - device: tf.topk (ties to the lower index on cpu; other backends may order exact ties
 *   differently), then the k indices sorted ascending as the top-k of their negations.
 */
export const topK: Lowering<"topK"> = (node, ctx) => {
  const [batch, len] = inShape(ctx.graph, node, 0) as [number, number];
  const { k } = node.attrs;
  if (ctx.strategy === "host") {
    return (inputs) => {
      const scores = readF32(arg(inputs, 0));
      const out = new Int32Array(batch * k);
      for (let b = 0; b < batch; b++)
        out.set(topKRow(scores.subarray(b * len, (b + 1) * len), k), b * k);
      return [tf.tensor2d(out, [batch, k], "int32")];
    };
  }
  return (inputs) => {
    const { indices } = tf.topk(arg(inputs, 0), k, true);
    const negated = tf.neg(tf.cast(indices, "float32"));
    return [tf.cast(tf.neg(tf.topk(negated, k, true).values), "int32")];
  };
};

/**
 * gather: along axis a ≥ 1, keep the first keepPrefix entries, then entries
 * keepPrefix + idx[b, i]; x and idx broadcast from batch 1.
 * - device: one tf.gather with the full index [keepPrefix..., keepPrefix + idx] (batchDims
 *   1 when idx has a batch; a batch-1 x is tiled first).
 * - host: src/runtime/gather.ts on read-back arrays, as the reference kernel.
 */
export const gather: Lowering<"gather"> = (node, ctx) => {
  const xShape = inShape(ctx.graph, node, 0);
  const [idxBatch, k] = inShape(ctx.graph, node, 1) as [number, number];
  const { axis, keepPrefix } = node.attrs;
  const shape = outShape(node);
  const batch = shape[0]!;
  const size = xShape[axis]!;
  const kept = keepPrefix + k;
  if (ctx.strategy === "host") {
    const geometry = { ...node.attrs, xShape, idxShape: [idxBatch, k], batch };
    const where = `tfjs: ${nodeLabel(node)}`;
    return (inputs) => {
      const x = arg(inputs, 0);
      const idx = readI32(arg(inputs, 1));
      const out =
        x.dtype === "int32"
          ? gatherRows(geometry, readI32(x), idx, new Int32Array(sizeOf(shape)), where)
          : gatherRows(
              geometry,
              readF32(x, ctx.scratch, "gather"),
              idx,
              new Float32Array(sizeOf(shape)),
              where,
            );
      return [tf.tensor(out, shape, x.dtype === "int32" ? "int32" : "float32")];
    };
  }
  // Flat gather on axis 0 of x viewed as [B·outer·D, inner] (tf.gather with batchDims is
  // wrong on tfjs-wasm 4.22): row (b·outer + o)·D + p, with p = keepPrefix + idx[b, i] or a
  // kept prefix position. The offsets (b·outer + o)·D are static.
  let outer = 1;
  for (let a = 1; a < axis; a++) outer *= xShape[a]!;
  const inner = sizeOf(xShape.slice(axis + 1));
  const offsets = new Int32Array(batch * outer);
  for (let i = 0; i < offsets.length; i++) offsets[i] = i * size;
  const prefix = Array.from({ length: keepPrefix }, (_, i) => i);
  return (inputs) => {
    let x = arg(inputs, 0);
    if (x.shape[0] !== batch) x = tf.tile(x, [batch, ...x.shape.slice(1).map(() => 1)]);
    let idx = tf.add(arg(inputs, 1), tf.scalar(keepPrefix, "int32"));
    if (keepPrefix > 0) {
      const head = tf.tile(tf.tensor2d(prefix, [1, keepPrefix], "int32"), [idxBatch, 1]);
      idx = tf.concat([head, idx], 1);
    }
    const rows = tf.add(
      tf.reshape(idx, [idxBatch, 1, kept]),
      tf.tensor3d(offsets, [batch, outer, 1], "int32"),
    );
    const flat = tf.reshape(x, [batch * outer * size, inner]);
    return [tf.reshape(tf.gather(flat, tf.reshape(rows, [-1])), shape)];
  };
};
