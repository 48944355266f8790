import type { Node } from "../../../src/ir/graph.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import { erf, erfc } from "./math.js";
import { anyIn, f32In, f32Out, outShape } from "./util.js";

/**
 * Dense math kernels. Storage is float32; every sum is accumulated in float64 (JS numbers)
 * and rounded once when stored.
 */

/**
 * linear: y[..., o] = Σ_i x[..., i] · W[o, i] + b[o], with W [out, in] (PyTorch layout) and
 * the bias optional.
 *
 * Rows of x are taken four at a time and each W row is dotted with all four, so one load
 * of W[o, i] serves four products; x rows and W rows are both contiguous.
 */
export function linear(node: Node<"linear">, inputs: readonly HostTensor[]): HostTensor[] {
  const x = f32In(node, inputs, 0);
  const w = f32In(node, inputs, 1);
  const bias = inputs.length > 2 ? f32In(node, inputs, 2).data : null;
  const [out, width] = w.shape as [number, number];
  const rows = x.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  const y = new Float32Array(rows * out);
  linearRows(x.data, w.data, bias, y, rows, width, out);
  return [f32Out(outShape(node), y)];
}

/** y[r, o] = Σ_i x[r, i] w[o, i] + bias[o] for r < rows, o < out; i < width. */
export function linearRows(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  y: Float32Array,
  rows: number,
  width: number,
  out: number,
): void {
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const x0 = r * width;
    const x1 = x0 + width;
    const x2 = x1 + width;
    const x3 = x2 + width;
    const y0 = r * out;
    for (let o = 0; o < out; o++) {
      const w0 = o * width;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < width; i++) {
        const wi = w[w0 + i]!;
        s0 += x[x0 + i]! * wi;
        s1 += x[x1 + i]! * wi;
        s2 += x[x2 + i]! * wi;
        s3 += x[x3 + i]! * wi;
      }
      const b = bias === null ? 0 : bias[o]!;
      y[y0 + o] = s0 + b;
      y[y0 + out + o] = s1 + b;
      y[y0 + 2 * out + o] = s2 + b;
      y[y0 + 3 * out + o] = s3 + b;
    }
  }
  for (; r < rows; r++) {
    const x0 = r * width;
    for (let o = 0; o < out; o++) {
      const w0 = o * width;
      let s = 0;
      for (let i = 0; i < width; i++) s += x[x0 + i]! * w[w0 + i]!;
      y[r * out + o] = s + (bias === null ? 0 : bias[o]!);
    }
  }
}

/**
 * Strides of `shape` for reading it broadcast to `target` (NumPy rules): shapes are
 * right-aligned, and an axis of size 1 (or a missing leading axis) gets stride 0.
 */
function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const strides = new Array<number>(target.length).fill(0);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const size = shape[i]!;
    const t = target.length - shape.length + i;
    strides[t] = size === 1 ? 0 : stride;
    stride *= size;
  }
  return strides;
}

/**
 * out = a ⊙ b elementwise with NumPy broadcasting, ⊙ = + or ×. The output is walked with
 * an odometer over all axes but the last, the last axis in a tight loop.
 */
function broadcastBinary(
  node: Node<"add"> | Node<"mul">,
  inputs: readonly HostTensor[],
  multiply: boolean,
): HostTensor[] {
  const a = f32In(node, inputs, 0);
  const b = f32In(node, inputs, 1);
  const shape = outShape(node);
  const total = shape.reduce((p, d) => p * d, 1);
  const out = new Float32Array(total);
  const ad = a.data;
  const bd = b.data;
  if (ad.length === total && bd.length === total) {
    // Same shape: no index arithmetic.
    if (multiply) for (let i = 0; i < total; i++) out[i] = ad[i]! * bd[i]!;
    else for (let i = 0; i < total; i++) out[i] = ad[i]! + bd[i]!;
    return [f32Out(shape, out)];
  }
  const rank = shape.length;
  const as = broadcastStrides(a.shape, shape);
  const bs = broadcastStrides(b.shape, shape);
  const inner = rank === 0 ? 1 : shape[rank - 1]!;
  const aStep = rank === 0 ? 0 : as[rank - 1]!;
  const bStep = rank === 0 ? 0 : bs[rank - 1]!;
  const counter = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let aOff = 0;
  let bOff = 0;
  for (let o = 0; o < total; o += inner) {
    if (multiply) {
      for (let k = 0; k < inner; k++) out[o + k] = ad[aOff + k * aStep]! * bd[bOff + k * bStep]!;
    } else {
      for (let k = 0; k < inner; k++) out[o + k] = ad[aOff + k * aStep]! + bd[bOff + k * bStep]!;
    }
    // Advance the odometer over axes rank-2 .. 0.
    for (let axis = rank - 2; axis >= 0; axis--) {
      const count = counter[axis]! + 1;
      if (count < shape[axis]!) {
        counter[axis] = count;
        aOff += as[axis]!;
        bOff += bs[axis]!;
        break;
      }
      counter[axis] = 0;
      aOff -= (count - 1) * as[axis]!;
      bOff -= (count - 1) * bs[axis]!;
    }
  }
  return [f32Out(shape, out)];
}

/** add: out = a + b with NumPy broadcasting (output shape from the shape rule). */
export function add(node: Node<"add">, inputs: readonly HostTensor[]): HostTensor[] {
  return broadcastBinary(node, inputs, false);
}

/** mul: out = a · b with NumPy broadcasting (output shape from the shape rule). */
export function mul(node: Node<"mul">, inputs: readonly HostTensor[]): HostTensor[] {
  return broadcastBinary(node, inputs, true);
}

/**
 * gelu, exact form: gelu(x) = x/2 · (1 + erf(x/√2)). For x < 0 the equal form
 * x/2 · erfc(|x|/√2) avoids cancelling 1 against erf ≈ -1.
 */
export function gelu(node: Node<"gelu">, inputs: readonly HostTensor[]): HostTensor[] {
  const x = f32In(node, inputs, 0).data;
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = geluScalar(x[i]!);
  return [f32Out(outShape(node), y)];
}

export function geluScalar(v: number): number {
  const z = v * Math.SQRT1_2;
  return v >= 0 ? 0.5 * v * (1 + erf(z)) : 0.5 * v * erfc(-z);
}

/**
 * layerNorm over the last axis (size C): μ = Σ x / C, σ² = Σ (x - μ)² / C (biased),
 * y = (x - μ) / √(σ² + eps) · γ + β.
 */
export function layerNorm(node: Node<"layerNorm">, inputs: readonly HostTensor[]): HostTensor[] {
  const x = f32In(node, inputs, 0).data;
  const gamma = f32In(node, inputs, 1).data;
  const beta = f32In(node, inputs, 2).data;
  const c = gamma.length;
  const rows = c === 0 ? 0 : x.length / c;
  const y = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    const off = r * c;
    let sum = 0;
    for (let i = 0; i < c; i++) sum += x[off + i]!;
    const mean = sum / c;
    let squares = 0;
    for (let i = 0; i < c; i++) {
      const dev = x[off + i]! - mean;
      squares += dev * dev;
    }
    const inv = 1 / Math.sqrt(squares / c + node.attrs.eps);
    for (let i = 0; i < c; i++) y[off + i] = (x[off + i]! - mean) * inv * gamma[i]! + beta[i]!;
  }
  return [f32Out(outShape(node), y)];
}

/** reshape: the same elements in the same order under the new static shape (no copy). */
export function reshape(node: Node<"reshape">, inputs: readonly HostTensor[]): HostTensor[] {
  const x = anyIn(node, inputs, 0);
  const shape = [...outShape(node)];
  return [
    x.dtype === "f32"
      ? { dtype: "f32", shape, data: x.data }
      : { dtype: "i32", shape, data: x.data },
  ];
}
