import * as tf from "@tensorflow/tfjs-core";
import type { Node } from "../../../src/ir/graph.js";
import {
  ACTIVATION_CODE_MAX,
  channelScales,
  WEIGHT_CODE_MAX,
  weightCodes,
} from "../../../src/ir/ops/quantized.js";
import type { LowerContext, Lowering } from "../types.js";
import { arg, inShape, outShape } from "../util.js";

/**
 * int8 linears, emulated: tfjs has no integer GEMM, so the integer codes are held in
 * float32 tensors (small integers, exact) and multiplied by tfjs's float32 matMul. The
 * codes and scales are those of src/ir/ops/quantized.ts (onnxruntime's formulas); only the
 * dot products differ from the reference's exact integer sums, by float32 accumulation
 * rounding. It is for checking int8 graphs anywhere tfjs runs, not for speed.
 */

/** rne(v) = round half to even, from floor (tfjs's round kernel differs by backend). */
function roundHalfEven(v: tf.Tensor): tf.Tensor {
  const r = tf.floor(tf.add(v, 0.5));
  const tie = tf.equal(tf.sub(r, v), 0.5);
  const odd = tf.equal(tf.sub(r, tf.mul(tf.floor(tf.mul(r, 0.5)), 2)), 1);
  return tf.sub(r, tf.cast(tf.logicalAnd(tie, odd), "float32"));
}

/** True when input `index` of `node` is the weightScales of its weight input 1. */
function scalesOfOwnWeight(node: Node<"quantizedLinear">, ctx: LowerContext): boolean {
  const producer = ctx.graph.nodes[node.inputs[2]!.node]!;
  const weight = node.inputs[1]!;
  const read = producer.inputs[0];
  return (
    producer.op === "weightScales" && read?.node === weight.node && read.output === weight.output
  );
}

/** weightScales: from the bound weight once (kept resident), else s = max |W| / 127 per row. */
export const weightScales: Lowering<"weightScales"> = (node, ctx) => {
  const w = ctx.claim(node, 0);
  if (w !== null && w.dtype === "f32") {
    const [out, width] = w.shape as [number, number];
    const scales = ctx.keep(tf.tensor1d(channelScales(w.data, out, width)));
    return () => [scales];
  }
  return (inputs) => {
    const largest = tf.max(tf.abs(arg(inputs, 0)), 1);
    return [tf.where(tf.equal(largest, 0), tf.onesLike(largest), tf.div(largest, WEIGHT_CODE_MAX))];
  };
};

/**
 * quantizedLinear on x as [rows, in]: lo, hi, sx, zx as onnxruntime computes them (float32
 * ops in the same order), centred codes u - zx, then (u - zx) · Qᵀ · (sx · s) + b. Qᵀ
 * [in, out] is formed once from the bound weight when its scales are its own weightScales.
 */
export const quantizedLinear: Lowering<"quantizedLinear"> = (node, ctx) => {
  const [out, width] = inShape(ctx.graph, node, 1) as [number, number];
  const shape = outShape(node);
  const hasBias = node.inputs.length > 3;
  const w = scalesOfOwnWeight(node, ctx) ? ctx.claim(node, 1) : null;
  let codesT: tf.Tensor | null = null;
  if (w !== null && w.dtype === "f32") {
    const codes = weightCodes(w.data, channelScales(w.data, out, width), out, width);
    codesT = ctx.keep(tf.transpose(tf.tensor2d(Float32Array.from(codes), [out, width])));
  }
  return (inputs) => {
    const x = tf.reshape(arg(inputs, 0), [-1, width]);
    const scales = arg(inputs, 2);
    const qT =
      codesT ??
      tf.transpose(
        tf.clipByValue(
          roundHalfEven(tf.div(arg(inputs, 1), tf.reshape(scales, [out, 1]))),
          -WEIGHT_CODE_MAX,
          WEIGHT_CODE_MAX,
        ),
      );
    const lo = tf.minimum(tf.min(x), 0);
    const hi = tf.maximum(tf.max(x), 0);
    const sx = tf.where(
      tf.equal(hi, lo),
      tf.onesLike(hi),
      tf.div(tf.sub(hi, lo), ACTIVATION_CODE_MAX),
    );
    const zx = roundHalfEven(tf.clipByValue(tf.sub(0, tf.div(lo, sx)), 0, ACTIVATION_CODE_MAX));
    const u = tf.clipByValue(tf.add(roundHalfEven(tf.div(x, sx)), zx), 0, ACTIVATION_CODE_MAX);
    const acc = tf.matMul(tf.sub(u, zx), qT);
    const scaled = tf.mul(acc, tf.mul(sx, scales));
    const y = hasBias ? tf.add(scaled, arg(inputs, 3)) : scaled;
    return [tf.reshape(y, shape)];
  };
};
