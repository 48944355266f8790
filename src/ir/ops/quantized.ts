import { ShapeError } from "../errors.js";
import type { OpDef } from "./def.js";
import { expectDim, expectType, f32 } from "./shape-utils.js";

/**
 * Reduced precision: the shape rules of weightScales and quantizedLinear (semantics in
 * types.ts), and the integer math itself, shared by the reference kernel (the oracle) and
 * by the lowerings that quantise weights when an executable is created. The activation
 * formulas are onnxruntime's (DynamicQuantizeLinear, MLAS's QuantizeLinear), so the
 * reference emulates its int8 kernels exactly.
 */

/** Largest int8 weight code: symmetric codes use [-127, 127], so -W quantises to -q. */
export const WEIGHT_CODE_MAX = 127;
/** uint8 activation codes span [0, 255]. */
export const ACTIVATION_CODE_MAX = 255;

export const weightScales: OpDef<"weightScales"> = {
  family: "dense",
  arity: [1, 1],
  infer: ([w]) => {
    const [out] = expectType("weightScales weight", w!, "f32", 2);
    return [f32([out!])];
  },
};

export const quantizedLinear: OpDef<"quantizedLinear"> = {
  family: "dense",
  arity: [3, 4],
  infer: ([x, w, scales, b]) => {
    if (x!.dtype !== "f32" || x!.shape.length < 1) {
      throw new ShapeError("quantizedLinear input must be f32 of rank >= 1");
    }
    const [out, inFeatures] = expectType("quantizedLinear weight", w!, "f32", 2);
    expectDim("quantizedLinear weight in-features", inFeatures!, x!.shape.at(-1)!);
    expectDim(
      "quantizedLinear scales length",
      expectType("quantizedLinear scales", scales!, "f32", 1)[0]!,
      out!,
    );
    if (b !== undefined) {
      expectDim(
        "quantizedLinear bias length",
        expectType("quantizedLinear bias", b, "f32", 1)[0]!,
        out!,
      );
    }
    return [f32([...x!.shape.slice(0, -1), out!])];
  },
};

/** Round half to even (IEEE's default rounding; what onnxruntime's quantisers use). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v); // half up
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** s[o] = max_i |W[o, i]| / 127 in float32, 1 where the row is all zero. W is [out, in]. */
export function channelScales(w: Float32Array, out: number, width: number): Float32Array {
  const scales = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let largest = 0;
    for (let i = 0; i < width; i++) largest = Math.max(largest, Math.abs(w[o * width + i]!));
    scales[o] = largest > 0 ? Math.fround(largest / WEIGHT_CODE_MAX) : 1;
  }
  return scales;
}

/** q[o, i] = clamp(rne(W[o, i] / s[o]), -127, 127): the int8 codes of W, [out, in]. */
export function weightCodes(
  w: Float32Array,
  scales: Float32Array,
  out: number,
  width: number,
): Int8Array {
  const codes = new Int8Array(out * width);
  for (let o = 0; o < out; o++) {
    const s = scales[o]!;
    for (let i = 0; i < width; i++) {
      const q = roundHalfEven(Math.fround(w[o * width + i]! / s));
      codes[o * width + i] = Math.max(-WEIGHT_CODE_MAX, Math.min(WEIGHT_CODE_MAX, q));
    }
  }
  return codes;
}

/** One tensor's dynamic uint8 quantisation: scale sx and zero point zx. */
export interface ActivationQuantization {
  readonly scale: number;
  readonly zeroPoint: number;
}

/**
 * onnxruntime's GetQuantizationParameter for uint8, in float32:
 *   lo = min(0, min x), hi = max(0, max x), sx = (hi - lo) / 255 (1 when hi = lo),
 *   zx = rne(clamp(0 - lo / sx, 0, 255)).
 */
export function activationQuantization(x: Float32Array): ActivationQuantization {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = hi === lo ? 1 : Math.fround(Math.fround(hi - lo) / ACTIVATION_CODE_MAX);
  const initial = Math.fround(0 - Math.fround(lo / scale));
  const zeroPoint = roundHalfEven(Math.max(0, Math.min(ACTIVATION_CODE_MAX, initial)));
  return { scale, zeroPoint };
}

/** u = clamp(rne(x / sx) + zx, 0, 255) (MLAS QuantizeLinear: float32 division, then round). */
export function activationCode(v: number, q: ActivationQuantization): number {
  const code = roundHalfEven(Math.fround(v / q.scale)) + q.zeroPoint;
  return Math.max(0, Math.min(ACTIVATION_CODE_MAX, code));
}
