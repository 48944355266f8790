import type { Lowering } from "./lower.js";

/**
 * Text-encoder, fusion and retrieval lowerings (formulas in src/ir/ops/types.ts). Standard
 * ONNX ops of opset 17 only, so the contrib and the portable model are the same here, and
 * `sprig export` writes exactly these nodes. Indices stay int32 (Gather takes int32 or
 * int64). Run-time index inputs were range-checked before the run (src/runtime/inputs.ts);
 * an index from a constant or another node is Gather's: onnxruntime rejects one outside
 * [-V, V) and, as ONNX specifies, counts a negative one from the end.
 */

/** embedding: Gather(table, ids) on axis 0: [V, C] by [B, L] → [B, L, C]. */
export const lowerEmbedding: Lowering<"embedding"> = (_node, ctx) => [
  ctx.e.gather(ctx.input(0), ctx.input(1), 0),
];

/** additiveMask: (1 - Cast(m, float)) · fill, float32 throughout as in PyTorch. */
export const lowerAdditiveMask: Lowering<"additiveMask"> = (node, ctx) => {
  const { e } = ctx;
  const keep = e.sub(e.float(1), e.cast(ctx.input(0), "float"));
  return [e.mul(keep, e.float(node.attrs.fill))];
};

/**
 * l2Normalize: x / Max(ReduceL2(x), eps) over the last axis, kept as [..., 1] to broadcast
 * (opset 17: ReduceL2 takes its axes as an attribute; opset 18 moved them to an input).
 */
export const lowerL2Normalize: Lowering<"l2Normalize"> = (node, ctx) => {
  const { e } = ctx;
  const x = ctx.input(0);
  const norm = e.op("ReduceL2", [x], { axes: [-1], keepdims: 1 });
  return [e.div(x, e.op("Max", [norm, e.float(node.attrs.eps)]))];
};

/** similarity: one Gemm, alpha · A Bᵀ with transB = 1 (b stays [N, D]) and no C. */
export const lowerSimilarity: Lowering<"similarity"> = (node, ctx) => [
  ctx.e.op("Gemm", [ctx.input(0), ctx.input(1)], {
    transB: 1,
    alpha: { float: node.attrs.scale },
  }),
];

/** selectBatch: Gather(x, idx) on axis 0: [B, ...] by [P] → [P, ...]. */
export const lowerSelectBatch: Lowering<"selectBatch"> = (_node, ctx) => [
  ctx.e.gather(ctx.input(0), ctx.input(1), 0),
];

/** slice: Slice with constant starts, ends and axes (step 1). */
export const lowerSlice: Lowering<"slice"> = (node, ctx) => {
  const { axis, start, end } = node.attrs;
  return [ctx.e.slice(ctx.input(0), [start], [end], [axis])];
};
