import onnxProto from "onnx-proto";
import { describe, expect, it } from "vitest";
import { buildOnnxModel } from "../../backends/onnx/model.js";
import { runReference } from "../../backends/reference/index.js";
import { compileModel, compileVision } from "../../src/api/compile.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph } from "../../src/ir/graph.js";
import {
  activationCode,
  activationQuantization,
  channelScales,
  roundHalfEven,
  weightCodes,
} from "../../src/ir/ops/quantized.js";
import { f32Tensor, type HostTensor } from "../../src/ir/tensor.js";
import { MODELS } from "../../src/models/index.js";
import { SMALL_RETRIEVAL } from "../conformance/graphs.js";
import { randomPixels, randomTensor, randomWeights, smallSpec } from "../models/support.js";
import { BACKEND_VARIANTS, type BackendVariant, runOn } from "../support/backends.js";
import { backendFor } from "./onnx/helpers.js";

/**
 * int8 linears: the reference kernels (the oracle) against hand-computed codes, against
 * onnxruntime's own integer kernels op by op, and every backend variant against them on
 * small int8 models.
 */

/** One weightScales + quantizedLinear over x [rows, 1, in] (W, b weights). */
function quantizedGraph(rows: number, width: number, out: number, bias: boolean): Graph {
  const b = new GraphBuilder("q8");
  const x = b.input("x", { dtype: "f32", shape: [rows, 1, width] });
  const w = b.weight("w", [out, width]);
  const scales = b.add1("weightScales", [w], {});
  const operands = bias ? [x, w, scales, b.weight("b", [out])] : [x, w, scales];
  b.output("y", b.add1("quantizedLinear", operands, {}));
  b.output("scales", scales);
  return b.build();
}

describe("int8 arithmetic (src/ir/ops/quantized.ts)", () => {
  it("rounds half to even", () => {
    expect([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4, -2.6].map(roundHalfEven)).toEqual([
      -2, -2, -0, 0, 2, 2, 2, -3,
    ]);
  });

  it("quantises weights per channel and activations per tensor as worked by hand", () => {
    // W = [[1, -0.5, 0.25], [0, 0, 0]]: s = [1/127, 1 (zero row)]; codes 127, -63.5 -> -64
    // (a tie, to even), 31.75 -> 32; the zero row codes to 0.
    const w = new Float32Array([1, -0.5, 0.25, 0, 0, 0]);
    const scales = channelScales(w, 2, 3);
    expect(Array.from(scales)).toEqual([Math.fround(1 / 127), 1]);
    expect(Array.from(weightCodes(w, scales, 2, 3))).toEqual([127, -64, 32, 0, 0, 0]);
    // x = [-1, 0.5, 2]: lo -1, hi 2, sx = 3/255, zx = 1/sx = 85; codes -85 + 85 = 0,
    // 42.5 (or just below) -> 42 + 85 = 127, 170 + 85 = 255.
    const x = new Float32Array([-1, 0.5, 2]);
    const quant = activationQuantization(x);
    expect(quant).toEqual({ scale: Math.fround(3 / 255), zeroPoint: 85 });
    expect(Array.from(x, (v) => activationCode(v, quant))).toEqual([0, 127, 255]);
    // all positive: lo is 0, the zero point 0; all zero: scale 1
    expect(activationQuantization(new Float32Array([0.5, 1]))).toEqual({
      scale: Math.fround(1 / 255),
      zeroPoint: 0,
    });
    expect(activationQuantization(new Float32Array([0, 0]))).toEqual({ scale: 1, zeroPoint: 0 });
  });

  it("computes the reference kernel from those codes: y = Σ (u - zx) q · sx s + b", () => {
    const graph = quantizedGraph(1, 3, 2, true);
    const weights = new Map<string, HostTensor>([
      ["w", f32Tensor([2, 3], new Float32Array([1, -0.5, 0.25, 0, 0, 0]))],
      ["b", f32Tensor([2], new Float32Array([0.5, -0.25]))],
    ]);
    const out = runReference(graph, weights, {
      x: f32Tensor([1, 1, 3], new Float32Array([-1, 0.5, 2])),
    });
    // centred codes (-85, 42, 170) against (127, -64, 32): -10795 - 2688 + 5440 = -8043
    const y0 = -8043 * (3 / 255) * (1 / 127) + 0.5;
    expect(out.y!.data[0]).toBeCloseTo(y0, 6);
    expect(out.y!.data[1]).toBe(-0.25);
    expect(Array.from(out.scales!.data)).toEqual([Math.fround(1 / 127), 1]);
  });
});

describe("the reference kernels emulate onnxruntime's integer kernels", () => {
  // Shapes of a small layer, rows spread over a batch axis; values of both signs and an
  // outlier, so the zero point is inside (0, 255).
  for (const [label, options] of [
    ["DynamicQuantizeMatMul", { hostAttention: false }],
    ["DynamicQuantizeLinear + MatMulInteger", { portable: true }],
  ] as const) {
    for (const bias of [true, false]) {
      it(`${label}${bias ? "" : ", no bias"}: equal up to the last rescale's rounding`, async () => {
        const graph = quantizedGraph(37, 96, 48, bias);
        const weights = new Map<string, HostTensor>([
          ["w", randomTensor([48, 96], 11, 0.2)],
          ["b", randomTensor([48], 12, 0.5)],
        ]);
        const x = randomTensor([37, 1, 96], 13, 1, 0.3);
        x.data[5] = 7.5;
        const want = runReference(graph, weights, { x });
        const exe = await backendFor(options).compile(graph, weights);
        let got: Record<string, HostTensor>;
        try {
          got = await exe.run({ x });
          expect(exe.detail).toContain(`int8 linears on onnxruntime's integer kernels`);
        } finally {
          exe.dispose();
        }
        expect(Array.from(got.scales!.data)).toEqual(Array.from(want.scales!.data));
        // One code off by one would move an output by about sx · s[o] · |q| ≈ 1e-4; what
        // remains is float32 rounding of the integer sum and of the rescale (< 1e-6 here).
        let worst = 0;
        for (let i = 0; i < want.y!.data.length; i++) {
          worst = Math.max(worst, Math.abs(got.y!.data[i]! - want.y!.data[i]!));
        }
        expect(worst).toBeLessThan(2e-6);
      });
    }
  }
});

describe("the onnx lowering of an int8 encoder layer", () => {
  const spec = smallSpec({ model: { numLayers: 1 } });
  const { graph } = compileVision({ ...spec, precision: "int8" });
  const weights = randomWeights(graph, 3);
  const decode = (portable: boolean) =>
    onnxProto.onnx.ModelProto.decode(buildOnnxModel(graph, weights, { portable })).graph!;
  const count = (nodes: readonly { opType?: string | null }[], op: string) =>
    nodes.filter((n) => n.opType === op).length;

  it("runs q, k and v as one DynamicQuantizeMatMul (one quantisation of their shared input)", () => {
    const model = decode(false);
    // [q | k | v], the output projection, FFN up, FFN down
    expect(count(model.node!, "DynamicQuantizeMatMul")).toBe(4);
    expect(count(model.node!, "Gemm")).toBe(0); // what fp32 linears lower to
    const int8 = model.initializer!.filter(
      (t) => t.dataType === onnxProto.onnx.TensorProto.DataType.INT8,
    );
    expect(int8.map((t) => (t.dims ?? []).map(Number))).toEqual([
      [32, 96],
      [32, 32],
      [32, 64],
      [64, 32],
    ]);
    // the float weights of the quantised linears are not written into the model
    const names = model.initializer!.map((t) => t.name);
    expect(names.some((n) => /query\.weight$|intermediate\.dense\.weight$/.test(n ?? ""))).toBe(
      false,
    );
  });

  it("uses standard ONNX integer ops only when portable", () => {
    const model = decode(true);
    expect(count(model.node!, "MatMulInteger")).toBe(4);
    expect(count(model.node!, "DynamicQuantizeLinear")).toBe(4);
    expect(model.node!.filter((n) => (n.domain ?? "") !== "")).toEqual([]);
  });
});

/**
 * |got - want| <= atol + rtol·|want|: the tolerances of the seeded parity suite
 * (test/conformance/parity.test.ts), not loosened. Every backend computes the same integer
 * codes (measured: no code differs on these graphs), so only float rounding remains:
 * measured worst 9.5e-7 (float32 variants) and 3.6e-7 (float64).
 */
function toleranceOf(variant: BackendVariant): { atol: number; rtol: number } {
  return variant.arithmetic === "float64" ? { atol: 1e-5, rtol: 1e-5 } : { atol: 1e-4, rtol: 0 };
}

function mismatches(
  got: Record<string, HostTensor>,
  want: Record<string, HostTensor>,
  tolerance: { atol: number; rtol: number },
): string[] {
  const problems: string[] = [];
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const g = got[name]!;
    if (g.dtype !== w.dtype || g.shape.join() !== w.shape.join()) {
      problems.push(`${name}: ${g.dtype}[${g.shape}], want ${w.dtype}[${w.shape}]`);
      continue;
    }
    const { atol, rtol } = w.dtype === "i32" ? { atol: 0, rtol: 0 } : tolerance;
    for (let i = 0; i < w.data.length; i++) {
      const excess = Math.abs(g.data[i]! - w.data[i]!) - (atol + rtol * Math.abs(w.data[i]!));
      if (!(excess <= 0)) {
        problems.push(`${name}[${i}]: got ${g.data[i]}, want ${w.data[i]}`);
        break;
      }
    }
  }
  return problems;
}

/** Small int8 models: a pruned block-sparse vision encoder (batch 2) and the retrieval model. */
const INT8_GRAPHS: readonly {
  name: string;
  build: () => { graph: Graph; inputs: Record<string, HostTensor> };
}[] = [
  {
    name: "vision: sparse, batch 2, keep 0.7 after layer 1",
    build: () => {
      const spec = smallSpec({
        batch: 2,
        sparsity: {
          attention: {
            blockSize: 8,
            local: 1,
            random: 1,
            seed: 0,
            perHead: false,
            padding: "reference",
          },
          tokens: { keepRate: 0.7, dropAfter: [1] },
          tokenOrder: "none",
        },
      });
      const { graph } = compileVision({ ...spec, precision: "int8" });
      return { graph, inputs: { pixel_values: randomPixels(spec, 4) } };
    },
  },
  {
    name: "retrieval model, int8 vision encoder",
    build: () => {
      const spec = {
        ...SMALL_RETRIEVAL,
        vision: { ...SMALL_RETRIEVAL.vision, precision: "int8" as const },
      };
      const { graph } = compileModel(MODELS.retrieval, spec);
      return { graph, inputs: MODELS.retrieval.syntheticInputs(graph, spec, 5) };
    },
  },
];

describe("int8 models on every backend variant, against the reference", () => {
  for (const entry of INT8_GRAPHS) {
    const { graph, inputs } = entry.build();
    const weights = randomWeights(graph, 3);
    const want = runReference(graph, weights, inputs);
    for (const variant of BACKEND_VARIANTS.filter((v) => v.name !== "reference")) {
      it(`${entry.name} on ${variant.name}`, async () => {
        const got = await runOn(variant, graph, weights, inputs);
        expect(mismatches(got, want, toleranceOf(variant))).toEqual([]);
      });
    }
  }
});
