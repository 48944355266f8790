import { BackendError } from "../../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../../src/ir/graph.js";
import { formatShape, numElements, sameShape, type TensorType } from "../../../src/ir/tensor.js";
import { type KernelSpec, type Stmt, sumLoop } from "./kernel.js";
import { input, kernelName, type NodePlan, single } from "./plan.js";
import {
  at,
  axesOfView,
  broadcastAxes,
  EXACT_DIVIDEND_LIMIT,
  elementAt,
  floorDiv,
  flt,
  int,
  sameView,
  viewOf,
} from "./views.js";

/**
 * Kernels for the dense math ops. Every kernel computes one output element per thread;
 * reductions loop over literal bounds, in the same order as the reference kernels, and
 * accumulate in the kernel's arithmetic (float64 in gpu.js cpu mode, float32 on GL and
 * WebAssembly).
 */

const THREAD_AXES = { z: "tz", y: "ty", x: "tx" } as const;

/** Copies a host tensor (a gpu.js Input of the same view) into device memory. */
export function uploadSpec(shape: readonly number[]): KernelSpec {
  const view = viewOf(shape);
  return {
    name: `upload${view.z}x${view.y}x${view.x}`,
    doc: `Device copy of a host tensor with view [${view.z}][${view.y}][${view.x}].`,
    params: ["src"],
    output: view,
    body: [`return ${at("src", "tz", "ty", "tx")};`],
  };
}

/**
 * linear: y[.., o] = Σ_i x[.., i] · W[o, i] + b[o], W [out, in]. Output element (z, y, o)
 * of the output view reads row (z, y) of x's view, which has the same leading sizes.
 */
export function lowerLinear(node: Node<"linear">, inputs: readonly TensorType[]): NodePlan {
  const [x, w, b] = inputs;
  const [out, width] = w!.shape as [number, number];
  const outShape = node.outputs[0]!.shape;
  const hasBias = b !== undefined;
  const body: Stmt[] = [
    "let acc = 0.0;",
    ...sumLoop(
      "acc",
      "i",
      0,
      width,
      (i) => `${at("x", "tz", "ty", i)} * ${at("weight", "0", "tx", i)}`,
    ),
    hasBias ? `return acc + ${at("bias", "0", "0", "tx")};` : "return acc;",
  ];
  return single([
    {
      label: "y",
      args: hasBias ? [input(0), input(1), input(2)] : [input(0), input(1)],
      spec: {
        name: kernelName(node),
        doc: `linear ${formatShape(x!.shape)} -> ${formatShape(outShape)}: y[.., o] = Σ_{i<${width}} x[.., i] · W[o, i]${hasBias ? " + b[o]" : ""}, o < ${out}.`,
        params: hasBias ? ["x", "weight", "bias"] : ["x", "weight"],
        output: viewOf(outShape),
        body,
      },
    },
  ]);
}

/** add / mul: out = a ⊙ b with NumPy broadcasting. */
function lowerBinary(
  node: Node<"add"> | Node<"mul">,
  inputs: readonly TensorType[],
  operator: "+" | "*",
): NodePlan {
  const [a, b] = inputs;
  const outShape = node.outputs[0]!.shape;
  let body: Stmt[];
  if (sameShape(a!.shape, outShape) && sameShape(b!.shape, outShape)) {
    body = [`return ${at("a", "tz", "ty", "tx")} ${operator} ${at("b", "tz", "ty", "tx")};`];
  } else {
    const { lines, axes } = axesOfView(outShape, "o", THREAD_AXES);
    checkMergedAxes(node, outShape);
    const left = elementAt("a", a!.shape, broadcastAxes(a!.shape, outShape, axes));
    const right = elementAt("b", b!.shape, broadcastAxes(b!.shape, outShape, axes));
    body = [...lines, `return ${left} ${operator} ${right};`];
  }
  return single([
    {
      label: "out",
      args: [input(0), input(1)],
      spec: {
        name: kernelName(node),
        doc: `${node.op} ${formatShape(a!.shape)} ${operator} ${formatShape(b!.shape)} -> ${formatShape(outShape)} (NumPy broadcasting).`,
        params: ["a", "b"],
        output: viewOf(outShape),
        body,
      },
    },
  ]);
}

export const lowerAdd = (node: Node<"add">, inputs: readonly TensorType[]): NodePlan =>
  lowerBinary(node, inputs, "+");
export const lowerMul = (node: Node<"mul">, inputs: readonly TensorType[]): NodePlan =>
  lowerBinary(node, inputs, "*");

/** Rank-4+ views merge leading axes into z; recovering them divides z, which must be small. */
function checkMergedAxes(node: Node, shape: readonly number[]): void {
  if (shape.length >= 4 && viewOf(shape).z >= EXACT_DIVIDEND_LIMIT) {
    throw new BackendError(
      `gpujs: ${nodeLabel(node)}: ${formatShape(shape)} merges ${viewOf(shape).z} leading rows; at most ${EXACT_DIVIDEND_LIMIT} can be indexed exactly in float32`,
    );
  }
}

// ---- GELU ------------------------------------------------------------------------------------

/**
 * Coefficients of erf's Maclaurin series in w = u²:
 *   erf(u) = 2/√π Σ_n (-1)^n u^(2n+1) / (n! (2n+1)) = u · Σ_n c_n w^n,
 *   c_n = 2/√π · (-1)^n / (n! (2n+1)).
 * For u < 1 the terms fall below 1e-14 by n = 14 (|c_14| < 3e-13).
 */
export const ERF_SERIES_TERMS = 15;
/**
 * Depth of Laplace's continued fraction for erfc on u ≥ 1:
 *   erfc(u) = e^(-u²)/√π · 1/(u + (1/2)/(u + (2/2)/(u + (3/2)/(u + ...)))),
 * evaluated from level K down to 1. At u = 1 (its slowest point) depth 80 leaves an error
 * below 2e-11; it shrinks quickly as u grows.
 */
export const ERFC_FRACTION_DEPTH = 80;

export function erfSeriesCoefficients(): number[] {
  const coefficients: number[] = [];
  let factorial = 1;
  for (let n = 0; n < ERF_SERIES_TERMS; n++) {
    if (n > 0) factorial *= n;
    coefficients.push(
      ((2 / Math.sqrt(Math.PI)) * (n % 2 === 0 ? 1 : -1)) / (factorial * (2 * n + 1)),
    );
  }
  return coefficients;
}

/**
 * Statements leaving erf(u) in `erfU` and erfc(u) in `erfcU` for u = `u` ≥ 0: the series
 * (Horner form, unrolled) below 1, the continued fraction from 1 on. Each is used where it
 * converges quickly and neither cancels: for u < 1, erfc = 1 - erf ≥ 0.157 loses at most one
 * digit, and for u ≥ 1, erf = 1 - erfc with erfc ≤ 0.157. In float64 (gpu.js cpu mode) the
 * result is within 1e-11 of erf; in float32 within a few ulp.
 */
export function erfStmts(u: string): Stmt[] {
  const c = erfSeriesCoefficients();
  const horner: string[] = [`let s = ${flt(c[c.length - 1]!)};`];
  for (let n = c.length - 2; n >= 0; n--) horner.push(`s = ${flt(c[n]!)} + w * s;`);
  return [
    "let erfU = 0.0;",
    "let erfcU = 0.0;",
    {
      head: `if (${u} < 1.0)`,
      body: [`const w = ${u} * ${u};`, ...horner, `erfU = ${u} * s;`, "erfcU = 1.0 - erfU;"],
      orElse: [
        `let t = ${u};`,
        {
          head: `for (let level = 0; level < ${int(ERFC_FRACTION_DEPTH)}; level++)`,
          body: [`t = ${u} + (${flt(ERFC_FRACTION_DEPTH)} - level) * 0.5 / t;`],
        },
        `erfcU = Math.exp(-${u} * ${u}) * ${flt(1 / Math.sqrt(Math.PI))} / t;`,
        "erfU = 1.0 - erfcU;",
      ],
    },
  ];
}

/**
 * gelu(v) = v/2 · (1 + erf(v/√2)). With u = |v|/√2: v/2 · (1 + erf(u)) for v ≥ 0 and
 * v/2 · erfc(u) for v < 0 (erf is odd), the latter free of cancellation for large |v|.
 */
export function lowerGelu(node: Node<"gelu">, inputs: readonly TensorType[]): NodePlan {
  const shape = inputs[0]!.shape;
  return single([
    {
      label: "y",
      args: [input(0)],
      spec: {
        name: kernelName(node),
        doc: `gelu ${formatShape(shape)}: v/2 · (1 + erf(v/√2)), erf by series (u < 1) or continued fraction.`,
        params: ["x"],
        output: viewOf(shape),
        body: [
          `const v = ${at("x", "tz", "ty", "tx")};`,
          `const u = Math.abs(v) * ${flt(Math.SQRT1_2)};`,
          ...erfStmts("u"),
          { head: "if (v >= 0.0)", body: ["return 0.5 * v * (1.0 + erfU);"] },
          "return 0.5 * v * erfcU;",
        ],
      },
    },
  ]);
}

// ---- layer norm ------------------------------------------------------------------------------

/**
 * layerNorm over the last axis (size C), in two kernels:
 *   stats[.., 0] = μ = Σ x / C,  stats[.., 1] = 1/√(Σ (x - μ)² / C + eps)   (biased variance)
 *   y = (x - μ) · stats[.., 1] · γ + β.
 */
export function lowerLayerNorm(node: Node<"layerNorm">, inputs: readonly TensorType[]): NodePlan {
  const shape = inputs[0]!.shape;
  const view = viewOf(shape);
  const c = view.x;
  const { eps } = node.attrs;
  const stats: KernelSpec = {
    name: kernelName(node, "Stats"),
    doc: `layerNorm ${formatShape(shape)} statistics per row: [μ, 1/√(σ² + ${eps})] over ${c} values.`,
    params: ["x"],
    output: { z: view.z, y: view.y, x: 2 },
    body: [
      "let sum = 0.0;",
      ...sumLoop("sum", "i", 0, c, (i) => at("x", "tz", "ty", i)),
      `const mean = sum / ${flt(c)};`,
      { head: "if (tx === 0)", body: ["return mean;"] },
      "let squares = 0.0;",
      ...sumLoop(
        "squares",
        "i",
        0,
        c,
        (i) => `(${at("x", "tz", "ty", i)} - mean) * (${at("x", "tz", "ty", i)} - mean)`,
      ),
      `return 1.0 / Math.sqrt(squares / ${flt(c)} + ${flt(eps)});`,
    ],
  };
  const apply: KernelSpec = {
    name: kernelName(node, "Apply"),
    doc: `layerNorm ${formatShape(shape)}: y = (x - μ) · rstd · γ + β.`,
    params: ["x", "stats", "gamma", "beta"],
    output: view,
    body: [
      `return (${at("x", "tz", "ty", "tx")} - ${at("stats", "tz", "ty", "0")}) * ${at("stats", "tz", "ty", "1")} * ${at("gamma", "0", "0", "tx")} + ${at("beta", "0", "0", "tx")};`,
    ],
  };
  return single([
    { label: "stats", args: [input(0)], spec: stats },
    {
      label: "y",
      args: [input(0), { kind: "temp", index: 0 }, input(1), input(2)],
      spec: apply,
    },
  ]);
}

// ---- reshape ---------------------------------------------------------------------------------

/**
 * reshape keeps the row-major element order. When both shapes have the same device view
 * the output aliases the input; otherwise a kernel copies element f (row-major position) of
 * the output from position f of the input, recovering the input's indices by division.
 */
export function lowerReshape(node: Node<"reshape">, inputs: readonly TensorType[]): NodePlan {
  const inShape = inputs[0]!.shape;
  const outShape = node.outputs[0]!.shape;
  if (sameView(viewOf(inShape), viewOf(outShape))) return { launches: [], outputs: [input(0)] };
  const total = numElements(outShape);
  if (total >= EXACT_DIVIDEND_LIMIT) {
    throw new BackendError(
      `gpujs: ${nodeLabel(node)}: reshaping ${total} elements between different device views needs exact integer division beyond float32's range (limit ${EXACT_DIVIDEND_LIMIT})`,
    );
  }
  const { lines, axes } = axesOfView(outShape, "o", THREAD_AXES);
  // f = Σ axis_i · stride_i over the output shape, then peeled over the input shape.
  let flat = "0";
  outShape.forEach((size, i) => {
    flat = flat === "0" ? axes[i]! : `(${flat}) * ${int(size)} + ${axes[i]}`;
  });
  const body: Stmt[] = [...lines, `const f = ${flat};`];
  const inAxes: string[] = new Array<string>(inShape.length);
  let rest = "f";
  for (let i = inShape.length - 1; i >= 1; i--) {
    body.push(`const q${i} = ${floorDiv(rest, inShape[i]!)};`);
    body.push(`const i${i} = ${rest} - q${i} * ${int(inShape[i]!)};`);
    inAxes[i] = `i${i}`;
    rest = `q${i}`;
  }
  inAxes[0] = rest;
  body.push(`return ${elementAt("x", inShape, inAxes)};`);
  return single([
    {
      label: "y",
      args: [input(0)],
      spec: {
        name: kernelName(node),
        doc: `reshape ${formatShape(inShape)} -> ${formatShape(outShape)} (row-major order kept).`,
        params: ["x"],
        output: viewOf(outShape),
        body,
      },
    },
  ]);
}
