import type { Node } from "../../../src/ir/graph.js";
import { ACTIVATION_CODE_MAX, WEIGHT_CODE_MAX } from "../../../src/ir/ops/quantized.js";
import { formatShape, type TensorType } from "../../../src/ir/tensor.js";
import type { KernelSpec, Stmt } from "./kernel.js";
import { sumLoop } from "./kernel.js";
import { input, kernelName, type NodePlan, single, temp } from "./plan.js";
import { at, flt, int, viewOf } from "./views.js";

/**
 * int8 linears, emulated in gpu.js kernels (float arithmetic: float32 on GL and WebAssembly,
 * float64 in cpu mode): the codes are small integers held in floats, so only the dot
 * products' accumulation rounding differs from the reference's exact integer sums. Codes
 * and scales follow src/ir/ops/quantized.ts (onnxruntime's formulas). Lowerings here see
 * types only, so the weight codes are recomputed on the device every run: this checks int8
 * graphs where gpu.js runs; it is not a fast path.
 */

/** Statements leaving rne(`value`) (round half to even) in `name`. */
function roundHalfEvenStmts(name: string, value: string): Stmt[] {
  return [
    `const ${name}Raw = ${value};`,
    `let ${name} = Math.floor(${name}Raw + 0.5);`,
    // a tie sits exactly halfway: keep the even neighbour, 2 ⌊r / 2⌋
    {
      head: `if (${name} - ${name}Raw === 0.5)`,
      body: [`${name} = 2.0 * Math.floor(${name} * 0.5);`],
    },
  ];
}

/** weightScales: s[o] = max_i |W[o, i]| / 127, 1 for an all-zero row. */
export function lowerWeightScales(
  node: Node<"weightScales">,
  inputs: readonly TensorType[],
): NodePlan {
  const [out, width] = inputs[0]!.shape as [number, number];
  return single([
    {
      label: "scales",
      args: [input(0)],
      spec: {
        name: kernelName(node),
        doc: `weightScales ${formatShape([out, width])}: s[o] = max_i |W[o, i]| / ${WEIGHT_CODE_MAX} (1 if the row is zero).`,
        params: ["weight"],
        output: viewOf([out]),
        body: [
          "let largest = 0.0;",
          {
            head: `for (let i = 0; i < ${int(width)}; i++)`,
            body: [`largest = Math.max(largest, Math.abs(${at("weight", "0", "tx", "i")}));`],
          },
          { head: "if (largest === 0.0)", body: ["return 1.0;"] },
          `return largest / ${flt(WEIGHT_CODE_MAX)};`,
        ],
      },
    },
  ]);
}

/**
 * quantizedLinear in five kernels:
 *   range[r]  = [min, max] of row r of x
 *   params    = [sx, zx]: lo = min(0, min range), hi = max(0, max range),
 *               sx = (hi - lo) / 255 (1 if hi = lo), zx = rne(clamp(-lo / sx, 0, 255))
 *   centred   = clamp(rne(x / sx) + zx, 0, 255) - zx
 *   codes     = clamp(rne(W / s[o]), -127, 127)
 *   y[.., o]  = Σ_i centred[.., i] · codes[o, i] · (sx · s[o]) + b[o]
 */
export function lowerQuantizedLinear(
  node: Node<"quantizedLinear">,
  inputs: readonly TensorType[],
): NodePlan {
  const [x, w, , b] = inputs;
  const [out, width] = w!.shape as [number, number];
  const xView = viewOf(x!.shape);
  const outShape = node.outputs[0]!.shape;
  const hasBias = b !== undefined;
  const range: KernelSpec = {
    name: kernelName(node, "Range"),
    doc: `quantizedLinear ${formatShape(x!.shape)}: [min, max] of each row of ${width} values.`,
    params: ["x"],
    output: { z: xView.z, y: xView.y, x: 2 },
    body: [
      `let lo = ${at("x", "tz", "ty", "0")};`,
      "let hi = lo;",
      {
        head: `for (let i = 1; i < ${int(width)}; i++)`,
        body: [
          `lo = Math.min(lo, ${at("x", "tz", "ty", "i")});`,
          `hi = Math.max(hi, ${at("x", "tz", "ty", "i")});`,
        ],
      },
      { head: "if (tx === 0)", body: ["return lo;"] },
      "return hi;",
    ],
  };
  const params: KernelSpec = {
    name: kernelName(node, "Params"),
    doc: `quantizedLinear ${formatShape(x!.shape)}: uint8 scale and zero point of the whole tensor, [sx, zx].`,
    params: ["range"],
    output: { z: 1, y: 1, x: 2 },
    body: [
      "let lo = 0.0;",
      "let hi = 0.0;",
      {
        head: `for (let z = 0; z < ${int(xView.z)}; z++)`,
        body: [
          {
            head: `for (let y = 0; y < ${int(xView.y)}; y++)`,
            body: [
              `lo = Math.min(lo, ${at("range", "z", "y", "0")});`,
              `hi = Math.max(hi, ${at("range", "z", "y", "1")});`,
            ],
          },
        ],
      },
      "let sx = 1.0;",
      { head: "if (hi > lo)", body: [`sx = (hi - lo) / ${flt(ACTIVATION_CODE_MAX)};`] },
      { head: "if (tx === 0)", body: ["return sx;"] },
      ...roundHalfEvenStmts(
        "zx",
        `Math.max(0.0, Math.min(${flt(ACTIVATION_CODE_MAX)}, 0.0 - lo / sx))`,
      ),
      "return zx;",
    ],
  };
  const centred: KernelSpec = {
    name: kernelName(node, "Activations"),
    doc: `quantizedLinear ${formatShape(x!.shape)}: centred uint8 codes clamp(rne(x / sx) + zx, 0, 255) - zx.`,
    params: ["x", "params"],
    output: xView,
    body: [
      `const sx = ${at("params", "0", "0", "0")};`,
      `const zx = ${at("params", "0", "0", "1")};`,
      ...roundHalfEvenStmts("code", `${at("x", "tz", "ty", "tx")} / sx`),
      `return Math.max(0.0, Math.min(${flt(ACTIVATION_CODE_MAX)}, code + zx)) - zx;`,
    ],
  };
  const codes: KernelSpec = {
    name: kernelName(node, "Codes"),
    doc: `quantizedLinear weight ${formatShape([out, width])}: int8 codes clamp(rne(W / s[o]), -127, 127).`,
    params: ["weight", "scales"],
    output: viewOf([out, width]),
    body: [
      ...roundHalfEvenStmts(
        "code",
        `${at("weight", "0", "ty", "tx")} / ${at("scales", "0", "0", "ty")}`,
      ),
      `return Math.max(${flt(-WEIGHT_CODE_MAX)}, Math.min(${flt(WEIGHT_CODE_MAX)}, code));`,
    ],
  };
  const product: KernelSpec = {
    name: kernelName(node),
    doc: `quantizedLinear ${formatShape(x!.shape)} -> ${formatShape(outShape)}: y[.., o] = Σ_{i<${width}} u[.., i] · q[o, i] · (sx · s[o])${hasBias ? " + b[o]" : ""}.`,
    params: hasBias
      ? ["centred", "codes", "params", "scales", "bias"]
      : ["centred", "codes", "params", "scales"],
    output: viewOf(outShape),
    body: [
      "let acc = 0.0;",
      ...sumLoop(
        "acc",
        "i",
        0,
        width,
        (i) => `${at("centred", "tz", "ty", i)} * ${at("codes", "0", "tx", i)}`,
      ),
      `const scaled = acc * (${at("params", "0", "0", "0")} * ${at("scales", "0", "0", "tx")});`,
      hasBias ? `return scaled + ${at("bias", "0", "0", "tx")};` : "return scaled;",
    ],
  };
  return single([
    { label: "range", args: [input(0)], spec: range },
    { label: "params", args: [temp(0)], spec: params },
    { label: "centred", args: [input(0), temp(1)], spec: centred },
    { label: "codes", args: [input(1), input(2)], spec: codes },
    {
      label: "y",
      args: hasBias
        ? [temp(2), temp(3), temp(1), input(2), input(3)]
        : [temp(2), temp(3), temp(1), input(2)],
      spec: product,
    },
  ]);
}
