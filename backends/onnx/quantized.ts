import type { AnyNode, Node } from "../../src/ir/graph.js";
import { channelScales, WEIGHT_CODE_MAX, weightCodes } from "../../src/ir/ops/quantized.js";
import { f32Tensor, numElements } from "../../src/ir/tensor.js";
import type { LowerContext, Lowering } from "./lower.js";

/**
 * int8 linears on onnxruntime's integer kernels (MLAS's u8 x s8 GEMM, which uses
 * AVX512-VNNI / AVX-VNNI dot products where the CPU has them, AMX on recent Xeons).
 *
 * Weights are quantised here, once, while the model is built: the int8 codes of W
 * (src/ir/ops/quantized.ts) become an int8 initializer [in, out] and the float weight is
 * never written into the model. Activations are quantised by onnxruntime on every run, per
 * tensor, which is exactly what the quantizedLinear op specifies.
 *
 * Which kernel, measured on the project CPU (AMD EPYC, AVX512-VNNI and AVX-VNNI, 2 threads;
 * x [1569, 768] x W [768, 3072]): DynamicQuantizeMatMul, DynamicQuantizeLinear +
 * MatMulInteger (+ Cast, Mul, Add) and DynamicQuantizeLinear + MatMulIntegerToFloat all ran
 * in 5.5-6 ms against fp32 Gemm's 20-22 ms, because onnxruntime fuses the last two into the
 * first. The contrib form writes that one node directly (no reliance on a fusion); the
 * portable form uses standard ONNX ops only.
 *
 * Siblings: quantizedLinear nodes that read the same x (q, k and v of one attention) share
 * one activation quantisation (it is per tensor: the same x gives the same codes, scale and
 * zero point), so they run as one DynamicQuantizeMatMul over their weights side by side,
 * each taking its columns: the same numbers, one pass over x instead of three and a wider
 * GEMM (measured 4.7 ms for [768, 2304] against 3 x 2.3 ms).
 */

/**
 * weightScales: computed while building when W is a bound weight (always, for graphs from
 * quantize-linear) and kept as a float initializer (quantizedLinear recomputes the same
 * scales from W; this value is read only where the graph outputs it). Otherwise the same
 * formula in ONNX ops: s = ReduceMax(|W|, axis 1) / 127, with 1 where the row is zero.
 */
export const lowerWeightScales: Lowering<"weightScales"> = (node, ctx) => {
  const w = ctx.known(0);
  const [out, width] = ctx.inputType(0).shape as [number, number];
  if (w !== null && w.dtype === "f32") {
    const scales = f32Tensor([out], channelScales(w.data, out, width));
    return [ctx.e.w.tensor(`${node.name}.int8_scales`, scales)];
  }
  const { e } = ctx;
  const largest = e.op("ReduceMax", [e.op("Abs", [ctx.input(0)])], { axes: [1], keepdims: 0 });
  const zero = e.op("Equal", [largest, e.float(0)]);
  return [e.where(zero, e.float(1), e.div(largest, e.float(WEIGHT_CODE_MAX)))];
};

/** The bound float values of one quantizedLinear: W [out, in], its scales, its bias. */
interface BoundLinear {
  readonly node: Node<"quantizedLinear">;
  readonly w: Float32Array;
  readonly scales: Float32Array;
  readonly bias: Float32Array | null;
  readonly out: number;
}

/**
 * The values of `node` when W and b are bound weights and its scales are weightScales(W)
 * (then equal to channelScales(W)), else null.
 */
function bound(node: AnyNode, ctx: LowerContext): BoundLinear | null {
  if (node.op !== "quantizedLinear") return null;
  const source = (i: number) => ctx.graph.nodes[node.inputs[i]!.node]!;
  const weight = source(1);
  const scales = source(2);
  const bias = node.inputs.length > 3 ? source(3) : null;
  if (weight.op !== "weight" || scales.op !== "weightScales") return null;
  if (scales.inputs[0]!.node !== weight.id) return null;
  if (bias !== null && bias.op !== "weight") return null;
  const w = ctx.weight(weight.attrs.name);
  const b = bias === null ? null : ctx.weight(bias.attrs.name);
  if (w.dtype !== "f32" || (b !== null && b.dtype !== "f32")) return null;
  const [out, width] = w.shape as [number, number];
  return {
    node,
    w: w.data,
    scales: channelScales(w.data, out, width),
    bias: b === null ? null : (b.data as Float32Array),
    out,
  };
}

/** This node and the other bound quantizedLinears reading the same x, in graph order. */
function siblings(node: Node<"quantizedLinear">, ctx: LowerContext): BoundLinear[] {
  const x = node.inputs[0]!;
  const group: BoundLinear[] = [];
  for (const other of ctx.graph.nodes) {
    const input = other.inputs[0];
    if (other.op !== "quantizedLinear" || input?.node !== x.node || input.output !== x.output) {
      continue;
    }
    const values = bound(other, ctx);
    if (values !== null) group.push(values);
  }
  return group.some((g) => g.node.id === node.id) ? group : [];
}

/** int8 codes of W (per its scales), transposed to [in, out]: the layout MatMul ops read. */
function codesOf(linears: readonly BoundLinear[], width: number): Int8Array {
  const total = linears.reduce((n, l) => n + l.out, 0);
  const transposed = new Int8Array(width * total);
  let column = 0;
  for (const l of linears) {
    const codes = weightCodes(l.w, l.scales, l.out, width);
    for (let o = 0; o < l.out; o++) {
      for (let i = 0; i < width; i++) transposed[i * total + column + o] = codes[o * width + i]!;
    }
    column += l.out;
  }
  return transposed;
}

/** Concatenated per-column vectors (scales, or biases with zeros where a member has none). */
function columns(linears: readonly BoundLinear[], pick: (l: BoundLinear) => Float32Array | null) {
  const total = linears.reduce((n, l) => n + l.out, 0);
  const values = new Float32Array(total);
  let at = 0;
  for (const l of linears) {
    const v = pick(l);
    if (v !== null) values.set(v, at);
    at += l.out;
  }
  return values;
}

/**
 * y = quantised x2 [rows, in] times the codes of `linears` side by side, rescaled per column
 * and biased: one DynamicQuantizeMatMul (contrib), or DynamicQuantizeLinear + MatMulInteger
 * + Cast + Mul + Add (portable). Returns [rows, Σ out].
 */
function emitProduct(
  ctx: LowerContext,
  x2: string,
  linears: readonly BoundLinear[],
  width: number,
): string {
  const { e } = ctx;
  const total = linears.reduce((n, l) => n + l.out, 0);
  const base = linears.map((l) => l.node.name).join("+");
  const codes = e.w.initializer(`${base}.int8`, "int8", [width, total], codesOf(linears, width));
  const scales = e.w.f32(
    columns(linears, (l) => l.scales),
    [total],
  );
  const hasBias = linears.some((l) => l.bias !== null);
  const bias = hasBias
    ? e.w.f32(
        columns(linears, (l) => l.bias),
        [total],
      )
    : null;
  if (ctx.options.contribOps) {
    return e.w.node("DynamicQuantizeMatMul", [x2, codes, scales, "", ...(bias ? [bias] : [])], {
      domain: "com.microsoft",
      base: `${e.base}/DynamicQuantizeMatMul`,
    })[0]!;
  }
  const [u, sx, zx] = e.w.node("DynamicQuantizeLinear", [x2], {
    outputs: 3,
    base: `${e.base}/DynamicQuantizeLinear`,
  }) as [string, string, string];
  const acc = e.op("MatMulInteger", [u, codes, zx]);
  const scaled = e.mul(e.cast(acc, "float"), e.mul(sx, scales));
  return bias ? e.add(scaled, bias) : scaled;
}

/**
 * quantizedLinear on x viewed as [rows, in]. Bound siblings share one product (see the
 * file comment); each takes its columns with a Slice. A node whose W or scales are not
 * known while building cannot be quantised ahead of time and is refused.
 */
export const lowerQuantizedLinear: Lowering<"quantizedLinear"> = (node, ctx) => {
  const { e } = ctx;
  const xShape = ctx.inputType(0).shape;
  const width = xShape.at(-1)!;
  const lead = xShape.slice(0, -1);
  const group = siblings(node, ctx);
  if (group.length === 0) {
    return ctx.fail(
      "int8 weights are quantised while the model is built, so W and b must be bound weights and the scales weightScales(W)",
    );
  }
  const product = ctx.memo(`quantizedLinear:${ctx.inputKey(0)}`, () => {
    const x = ctx.input(0);
    const x2 = xShape.length === 2 ? x : e.reshape(x, [numElements(lead), width]);
    return emitProduct(ctx, x2, group, width);
  });
  const index = group.findIndex((l) => l.node.id === node.id);
  const start = group.slice(0, index).reduce((n, l) => n + l.out, 0);
  const total = group.reduce((n, l) => n + l.out, 0);
  const out = group[index]!.out;
  const y = total === out ? product : e.slice(product, [start], [start + out], [1]);
  return [xShape.length === 2 ? y : e.reshape(y, [...lead, out])];
};
