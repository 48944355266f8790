import * as tf from "@tensorflow/tfjs-core";
import { BackendError } from "../../../src/ir/errors.js";
import { nodeLabel } from "../../../src/ir/graph.js";
import type { Lowering } from "../types.js";
import { arg, inShape, outShape, upload } from "../util.js";

/**
 * Sources, dense math and embedding ops. Every formula here is the one in
 * src/ir/ops/types.ts; comments say how it maps onto tfjs ops and why.
 */

// ---- sources ---------------------------------------------------------------------------------

/** Inputs are uploaded by the executor for each run; this step is never called. */
export const input: Lowering<"input"> = (node) => () => {
  throw new BackendError(`tfjs: ${nodeLabel(node)} is bound by the executor`);
};

/**
 * Weights and constants are uploaded once at compile time by the executor (unless every
 * consumer claims them) and stay resident until dispose; this step is never called.
 */
export const weight: Lowering<"weight"> = (node) => () => {
  throw new BackendError(`tfjs: ${nodeLabel(node)} is bound by the executor`);
};

export const constant: Lowering<"constant"> = (node) => () => {
  throw new BackendError(`tfjs: ${nodeLabel(node)} is bound by the executor`);
};

// ---- dense math -------------------------------------------------------------------------------

/**
 * linear: y = x Wᵀ + b over the last axis, as one 2-D matMul [rows, in] x [in, out].
 * Wᵀ is formed once at compile time when W is a weight: tfjs-wasm sends only
 * non-transposed 2-D products to XNNPACK's GEMM (transposeB falls back to a scalar loop
 * ~10x slower), and it caches XNNPACK's packed copy of a resident right operand across runs.
 * The bias rides in the fused matMul (XNNPACK adds it in the GEMM's epilogue).
 */
export const linear: Lowering<"linear"> = (node, ctx) => {
  const [outFeatures, inFeatures] = inShape(ctx.graph, node, 1) as [number, number];
  const shape = outShape(node);
  // Claimed: only the transpose stays resident (the upload is a temporary of the compile).
  const w = ctx.claim(node, 1);
  const wT = w === null ? null : ctx.keep(tf.transpose(upload(w)));
  const hasBias = node.inputs.length > 2;
  return (inputs) => {
    const x = arg(inputs, 0);
    const rows = x.size / inFeatures;
    const a = tf.reshape(x, [rows, inFeatures]);
    const b = wT ?? tf.transpose(arg(inputs, 1));
    const y = hasBias ? tf.fused.matMul({ a, b, bias: arg(inputs, 2) }) : tf.matMul(a, b);
    if (y.shape[1] !== outFeatures) throw new BackendError(`tfjs: ${nodeLabel(node)} width`);
    return [tf.reshape(y, shape)];
  };
};

/** add: a + b with NumPy broadcasting (tfjs broadcasts the same way). */
export const add: Lowering<"add"> = () => (inputs) => [tf.add(arg(inputs, 0), arg(inputs, 1))];

/** mul: a · b with NumPy broadcasting. */
export const mul: Lowering<"mul"> = () => (inputs) => [tf.mul(arg(inputs, 0), arg(inputs, 1))];

/**
 * gelu, exact form: gelu(x) = x/2 · (1 + erf(x/√2)). tf.erf is tfjs's erf kernel
 * (a rational approximation with absolute error below 2e-7, ample for float32 outputs).
 */
export const gelu: Lowering<"gelu"> = () => (inputs) => {
  const x = arg(inputs, 0);
  return [tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))))];
};

/**
 * layerNorm over the last axis: μ, σ² = moments (biased variance, as tf.moments computes it),
 * y = (x - μ) · rsqrt(σ² + eps) · γ + β.
 */
export const layerNorm: Lowering<"layerNorm"> = (node) => (inputs) => {
  const x = arg(inputs, 0);
  const { mean, variance } = tf.moments(x, -1, true);
  const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, node.attrs.eps)));
  return [tf.add(tf.mul(normed, arg(inputs, 1)), arg(inputs, 2))];
};

/** reshape: same elements, new static shape. */
export const reshape: Lowering<"reshape"> = (node) => {
  const shape = outShape(node);
  return (inputs) => [tf.reshape(arg(inputs, 0), shape)];
};

// ---- embedding and pooling -------------------------------------------------------------------

/**
 * patchEmbed: Conv2d with kernel = stride = p on every frame. Pixels [B, T, Cin, H, W] become
 * NHWC images [B·T, H, W, Cin]; the weight [C, Cin, p, p] becomes the tfjs filter
 * [p, p, Cin, C] (once, at compile time, for a resident weight); a fused conv2d with stride p
 * and "valid" padding adds the bias; [B·T, H/p, W/p, C] is row-major over patches per frame,
 * so a reshape gives [B, T·(H/p)·(W/p), C].
 */
export const patchEmbed: Lowering<"patchEmbed"> = (node, ctx) => {
  const [batch, frames, cin, height, width] = inShape(ctx.graph, node, 0) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const p = node.attrs.patchSize;
  const shape = outShape(node);
  const toFilter = (w: tf.Tensor) => tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D;
  const w = ctx.claim(node, 1);
  const filter = w === null ? null : ctx.keep(toFilter(upload(w)));
  return (inputs) => {
    const images = tf.transpose(
      tf.reshape(arg(inputs, 0), [batch * frames, cin, height, width]),
      [0, 2, 3, 1],
    ) as tf.Tensor4D;
    const y = tf.fused.conv2d({
      x: images,
      filter: filter ?? toFilter(arg(inputs, 1)),
      strides: [p, p],
      pad: "valid",
      bias: arg(inputs, 2),
    });
    return [tf.reshape(y, shape)];
  };
};

/** prependTokens: concat([prefix, x]) on the token axis; a batch-1 prefix is tiled to B. */
export const prependTokens: Lowering<"prependTokens"> = (node) => {
  const [batch] = outShape(node) as [number];
  return (inputs) => {
    let prefix = arg(inputs, 0);
    if (prefix.shape[0] !== batch) prefix = tf.tile(prefix, [batch, 1, 1]);
    return [tf.concat([prefix, arg(inputs, 1)], 1)];
  };
};

/** meanTokens: mean over tokens skip..N-1 of [B, N, C] -> [B, C]. */
export const meanTokens: Lowering<"meanTokens"> = (node, ctx) => {
  const [batch, tokens, c] = inShape(ctx.graph, node, 0) as [number, number, number];
  const { skip } = node.attrs;
  return (inputs) => {
    const x = arg(inputs, 0);
    const kept = skip === 0 ? x : tf.slice(x, [0, skip, 0], [batch, tokens - skip, c]);
    return [tf.mean(kept, 1)];
  };
};
