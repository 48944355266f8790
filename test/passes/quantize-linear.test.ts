import { describe, expect, it } from "vitest";
import { quantizeLinear } from "../../passes/quantize-linear.js";
import { compileModel, compileVision } from "../../src/api/compile.js";
import { parseFlagValue } from "../../src/config/flags.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { ConfigError } from "../../src/ir/errors.js";
import { type Graph, nodesOf } from "../../src/ir/graph.js";
import { printGraph } from "../../src/ir/print.js";
import { checkVisionSpec } from "../../src/models/config.js";
import { MODELS } from "../../src/models/index.js";
import { VISION_FLAGS } from "../../src/models/vision/schema.js";
import { runPasses } from "../../src/pass-manager.js";
import { SMALL_RETRIEVAL } from "../conformance/graphs.js";
import { smallSpec } from "../models/support.js";

const quantize = (graph: Graph, stacks: readonly (string | null)[] = [null]) =>
  runPasses(graph, [quantizeLinear({ stacks })], { debug: 0 }).graph;

/**
 * x f32[1,4,8] -> linear "layer.0.a" (W, b) -> linear "layer.0.b" (W, no bias) -> linear
 * "head" outside any layer -> output "y".
 */
function threeLinears(): Graph {
  const b = new GraphBuilder("lin");
  const x = b.input("x", { dtype: "f32", shape: [1, 4, 8] });
  const a = b.inLayer(0, () =>
    b.add1(
      "linear",
      [x, b.weight("a.weight", [16, 8]), b.weight("a.bias", [16])],
      {},
      {
        name: "layer.0.a",
      },
    ),
  );
  const y = b.inLayer(0, () =>
    b.add1("linear", [a, b.weight("b.weight", [8, 16])], {}, { name: "layer.0.b" }),
  );
  b.output("y", b.add1("linear", [y, b.weight("head.weight", [2, 8])], {}, { name: "head" }));
  return b.build();
}

describe("quantize-linear", () => {
  it("turns each linear of a layer into weightScales + quantizedLinear, keeping its name", () => {
    const b = new GraphBuilder("lin");
    const x = b.input("x", { dtype: "f32", shape: [1, 4, 8] });
    const wa = b.weight("a.weight", [16, 8]);
    const ba = b.weight("a.bias", [16]);
    const sa = b.add1("weightScales", [wa], {}, { name: "layer.0.a.weight_scales", layer: 0 });
    const a = b.add1("quantizedLinear", [x, wa, sa, ba], {}, { name: "layer.0.a", layer: 0 });
    const wb = b.weight("b.weight", [8, 16]);
    const sb = b.add1("weightScales", [wb], {}, { name: "layer.0.b.weight_scales", layer: 0 });
    const y = b.add1("quantizedLinear", [a, wb, sb], {}, { name: "layer.0.b", layer: 0 });
    b.output("y", b.add1("linear", [y, b.weight("head.weight", [2, 8])], {}, { name: "head" }));
    expect(printGraph(quantize(threeLinears()))).toBe(printGraph(b.build()));
  });

  it("shows the scales as tensors of the printed graph", () => {
    const text = printGraph(quantize(threeLinears()));
    expect(text).toContain(
      "%3 = weightScales(%1) {int8 symmetric per channel} : f32[16]  # layer.0.a.weight_scales [L0]",
    );
    expect(text).toContain("%4 = quantizedLinear(%0, %1, %3, %2)");
  });

  it("declines linears outside layers, in other stacks, and with a computed weight", () => {
    const b = new GraphBuilder("declines");
    const x = b.input("x", { dtype: "f32", shape: [1, 4, 8] });
    const w = b.weight("w", [8, 8]);
    const head = b.add1("linear", [x, w], {}, { name: "head" });
    const text = b.inStack("text", () =>
      b.inLayer(0, () => b.add1("linear", [head, b.weight("t", [8, 8])], {}, { name: "text" })),
    );
    const computed = b.add1("mul", [w, w], {}, { name: "w2" });
    b.output(
      "y",
      b.inLayer(0, () => b.add1("linear", [text, computed], {}, { name: "dyn" })),
    );
    const graph = b.build();
    expect(quantize(graph, [null, "vision"])).toBe(graph);
  });

  it("quantises the vision model's encoder layers and nothing else, at the same MACs", () => {
    const spec = smallSpec({
      model: { numLayers: 2 },
      sparsity: { attention: null, tokens: { keepRate: 0.7, dropAfter: [0] }, tokenOrder: "none" },
    });
    const fp32 = compileVision(spec);
    const int8 = compileVision({ ...spec, precision: "int8" });
    // q, k, v, output projection, FFN up and down in each of the 2 layers
    expect(nodesOf(int8.graph, "quantizedLinear")).toHaveLength(12);
    expect(nodesOf(int8.graph, "weightScales")).toHaveLength(12);
    expect(nodesOf(int8.graph, "linear")).toHaveLength(0);
    expect(nodesOf(int8.graph, "patchEmbed")).toHaveLength(1);
    expect(nodesOf(int8.graph, "attention")).toHaveLength(2);
    expect(int8.timings.map((t) => t.pass)).toEqual([
      "prune-tokens",
      "sink-token-selection",
      "quantize-linear",
      "eliminate-dead-code",
      "analyze-cost",
    ]);
    // the selection sank before quantisation: layer 0's FFN runs on the 1 + 23 kept rows
    const ffn = nodesOf(int8.graph, "quantizedLinear").find(
      (n) => n.name === "encoder.layer.0.intermediate.dense",
    )!;
    expect(ffn.outputs[0]!.shape).toEqual([1, 24, 64]);
    expect(int8.cost.totals).toEqual({ ...fp32.cost.totals, bytes: int8.cost.totals.bytes });
  });

  it("quantises only the vision stack of the retrieval model", () => {
    const { graph } = compileModel(MODELS.retrieval, {
      ...SMALL_RETRIEVAL,
      vision: { ...SMALL_RETRIEVAL.vision, precision: "int8" },
    });
    const stacks = (op: "linear" | "quantizedLinear") => [
      ...new Set(
        nodesOf(graph, op).map((n) => `${n.stack} ${n.layer === null ? "head" : "layer"}`),
      ),
    ];
    expect(stacks("quantizedLinear")).toEqual(["vision layer"]);
    expect(stacks("linear").sort()).toEqual(["null head", "text head", "text layer"]);
  });
});

describe("the precision option", () => {
  it("is a vision flag with the four precisions", () => {
    const flag = VISION_FLAGS.find((f) => f.flag === "--precision")!;
    expect(flag.path).toBe("precision");
    expect(flag.values).toEqual(["fp32", "fp16", "bf16", "int8"]);
    expect(parseFlagValue(flag, "int8")).toBe("int8");
    expect(() => parseFlagValue(flag, "int4")).toThrow(ConfigError);
  });

  for (const precision of ["fp16", "bf16"] as const) {
    it(`rejects ${precision}, naming the field and where it would run`, () => {
      let error: unknown;
      try {
        checkVisionSpec({ ...smallSpec(), precision });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).field).toBe("precision");
      expect((error as ConfigError).message).toMatch(/onnxruntime CPU.*tfjs and gpujs.*CUDA/);
    });
  }

  it("names the retrieval model's field under vision", () => {
    expect(() =>
      compileModel(MODELS.retrieval, {
        ...SMALL_RETRIEVAL,
        vision: { ...SMALL_RETRIEVAL.vision, precision: "fp16" },
      }),
    ).toThrow(/config field "vision\.precision"/);
  });

  it("accepts fp32 as the default it is", () => {
    const spec = smallSpec({ model: { numLayers: 1 } });
    expect(printGraph(compileVision({ ...spec, precision: "fp32" }).graph)).toBe(
      printGraph(compileVision(spec).graph),
    );
  });
});
