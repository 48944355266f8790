import type { Node } from "../../../src/ir/graph.js";
import {
  activationCode,
  activationQuantization,
  channelScales,
  weightCodes,
} from "../../../src/ir/ops/quantized.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import { f32In, f32Out, outShape } from "./util.js";

/**
 * Reduced-precision kernels: the oracle for int8 linears. They emulate onnxruntime's
 * dynamic quantisation exactly (the formulas and their float32 steps are in
 * src/ir/ops/quantized.ts and types.ts): integer codes, exact integer dot products, one
 * float32 rescale. Any other backend's int8 result is checked against these.
 */

/** weightScales: s[o] = max_i |W[o, i]| / 127 (1 for an all-zero row). */
export function weightScales(
  node: Node<"weightScales">,
  inputs: readonly HostTensor[],
): HostTensor[] {
  const w = f32In(node, inputs, 0);
  const [out, width] = w.shape as [number, number];
  return [f32Out(outShape(node), channelScales(w.data, out, width))];
}

/**
 * quantizedLinear: u = uint8 codes of x (one scale sx and zero point zx for the whole
 * tensor), q = int8 codes of W per output channel, then
 *   y[r, o] = f32(Σ_i (u[r, i] - zx) · q[o, i]) · f32(sx · s[o]) + b[o].
 * The sums are of integers below 2^53, so exact in float64 whatever the order.
 */
export function quantizedLinear(
  node: Node<"quantizedLinear">,
  inputs: readonly HostTensor[],
): HostTensor[] {
  const x = f32In(node, inputs, 0);
  const w = f32In(node, inputs, 1);
  const scales = f32In(node, inputs, 2).data;
  const bias = inputs.length > 3 ? f32In(node, inputs, 3).data : null;
  const [out, width] = w.shape as [number, number];
  const codes = weightCodes(w.data, scales, out, width);
  const quant = activationQuantization(x.data);
  const rows = x.data.length / width;
  const centred = new Int32Array(x.data.length);
  for (let i = 0; i < centred.length; i++) {
    centred[i] = activationCode(x.data[i]!, quant) - quant.zeroPoint;
  }
  const multipliers = Float32Array.from(scales, (s) => Math.fround(quant.scale * s));
  const y = new Float32Array(rows * out);
  for (let r = 0; r < rows; r++) {
    const x0 = r * width;
    for (let o = 0; o < out; o++) {
      const w0 = o * width;
      let acc = 0;
      for (let i = 0; i < width; i++) acc += centred[x0 + i]! * codes[w0 + i]!;
      const scaled = Math.fround(Math.fround(acc) * multipliers[o]!);
      y[r * out + o] = bias === null ? scaled : scaled + bias[o]!;
    }
  }
  return [f32Out(outShape(node), y)];
}
