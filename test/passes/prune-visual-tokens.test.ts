import { describe, expect, it } from "vitest";
import { pruneVisualTokens } from "../../passes/prune-visual-tokens.js";
import { runReference } from "../../backends/reference/index.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { ConfigError } from "../../src/ir/errors.js";
import { type Graph, nodesOf, type TensorRef } from "../../src/ir/graph.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { type BertLayerConfig, buildBertLayer } from "../../src/models/bert.js";
import { runPasses } from "../../src/pass-manager.js";
import { signature } from "../ir/support.js";
import { randomTensor, randomWeights } from "../models/support.js";

const BERT: BertLayerConfig = {
  hiddenSize: 32,
  numHeads: 4,
  intermediateSize: 64,
  layerNormEps: 1e-12,
  encoderWidth: 24,
};

// 2 items, 5 text tokens, 1 video CLS + 10 video tokens
const SHAPES = { batch: 2, textTokens: 5, visualTokens: 11 };

function prune(graph: Graph, keepRate: number, layers: number[]): Graph {
  return runPasses(graph, [pruneVisualTokens({ keepRate, layers })], { debug: 0 }).graph;
}

function outputType(graph: Graph, name: string) {
  const out = graph.outputs.find((o) => o.name === name);
  return out === undefined ? undefined : graph.nodes[out.ref.node]!.outputs[out.ref.output];
}

/**
 * Two text layers cross-attending to the same video tokens: layer 1's keys and values read
 * the tokens layer 0 pruned.
 */
function twoCrossLayers(): Graph {
  const b = new GraphBuilder("xattn2");
  const text = b.input("text", { dtype: "f32", shape: [2, 5, 16] });
  const video = b.input("video", { dtype: "f32", shape: [2, 11, 16] }, "visualTokens");
  const mask = b.input("mask", { dtype: "f32", shape: [2, 11] }, "visualMask");
  let h: TensorRef = text;
  for (let layer = 0; layer < 2; layer++) {
    h = b.inLayer(layer, () =>
      b.withScope(`layer.${layer}`, () => {
        const lin = (scope: string, x: TensorRef) =>
          b.withScope(scope, () => b.add1("linear", [x, b.weight("weight", [16, 16])], {}));
        const [ctx] = b.add(
          "attention",
          [lin("q", h), lin("k", video), lin("v", video), mask],
          { heads: 2, numCls: 0, probs: "all", mask: true, relPosBias: null },
          { name: b.scopedName("cross"), role: "crossAttention" },
        );
        return ctx!;
      }),
    );
  }
  b.output("out", h);
  return b.build();
}

describe("prune-visual-tokens", () => {
  const layer = buildBertLayer(BERT, SHAPES, 0);

  it("inserts scores, top-k and two gathers after the cross-attention and exposes them", () => {
    const result = prune(layer, 0.25, [0]);
    verifyGraph(result);
    // k = ceil(0.25 * 10) = 3 video tokens kept besides the video CLS
    const before = signature(layer);
    const after = signature(result);
    expect(after.length).toBe(before.length + 4);
    const cross = result.nodes.find((n) => n.role === "crossAttention")!;
    expect(after.slice(cross.id + 1, cross.id + 5)).toEqual([
      "tokenScores f32[2,10]",
      "topK i32[2,3]",
      "gather f32[2,4,24]",
      "gather f32[2,1,1,4]",
    ]);
    const [scores] = nodesOf(result, "tokenScores");
    expect(scores!.attrs).toEqual({ row: 0, skip: 1 });
    expect(scores!.inputs).toEqual([{ node: cross.id, output: 1 }]);
    const gathers = nodesOf(result, "gather");
    expect(gathers.map((g) => g.attrs)).toEqual([
      { axis: 1, keepPrefix: 1 },
      { axis: 3, keepPrefix: 1 },
    ]);
    expect(outputType(result, "visual_tokens.layer0")).toEqual({ dtype: "f32", shape: [2, 4, 24] });
    expect(outputType(result, "visual_mask.layer0")).toEqual({ dtype: "f32", shape: [2, 1, 1, 4] });
    expect(outputType(result, "visual_keep_idx.layer0")).toEqual({ dtype: "i32", shape: [2, 3] });
    // the layer's own outputs are untouched
    for (const name of ["layer_output", "self_attention_probs", "cross_attention_probs"]) {
      expect(outputType(result, name)).toEqual(outputType(layer, name));
    }
  });

  it("keeps the video tokens text token 0 attends to most (mean over heads), ascending", () => {
    const graph = prune(layer, 0.25, [0]);
    const weights = randomWeights(graph, 11);
    const maskData = randomTensor([2, 1, 1, 11], 5);
    // additive mask: 0 or -10000, with two masked video tokens in item 1
    maskData.data.fill(0);
    maskData.data[11 + 4] = -10000;
    maskData.data[11 + 7] = -10000;
    const inputs = {
      hidden_states: randomTensor([2, 5, 32], 1),
      attention_mask: randomTensor([2, 1, 1, 5], 2, 0),
      encoder_hidden_states: randomTensor([2, 11, 24], 3),
      encoder_attention_mask: maskData,
    };
    const out = runReference(graph, weights, inputs);
    const probs = out.cross_attention_probs!.data; // [2, 4, 5, 11]
    const video = inputs.encoder_hidden_states.data;
    for (let item = 0; item < 2; item++) {
      const scores = Array.from({ length: 10 }, (_, j) => {
        let s = 0;
        for (let h = 0; h < 4; h++) s += probs[((item * 4 + h) * 5 + 0) * 11 + 1 + j]!;
        return s / 4;
      });
      const kept = scores
        .map((s, j) => [s, j] as const)
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .slice(0, 3)
        .map(([, j]) => j)
        .sort((a, b) => a - b);
      const idx = Array.from(out["visual_keep_idx.layer0"]!.data.subarray(item * 3, item * 3 + 3));
      expect(idx).toEqual(kept);
      const rows = [0, ...kept.map((j) => j + 1)];
      const tokens = Array.from(
        out["visual_tokens.layer0"]!.data.subarray(item * 4 * 24, (item + 1) * 4 * 24),
      );
      expect(tokens).toEqual(
        rows.flatMap((r) =>
          Array.from(video.subarray((item * 11 + r) * 24, (item * 11 + r + 1) * 24)),
        ),
      );
      const maskRow = Array.from(out["visual_mask.layer0"]!.data.subarray(item * 4, item * 4 + 4));
      expect(maskRow).toEqual(rows.map((r) => maskData.data[item * 11 + r]));
    }
    if (item1MaskedKept(out["visual_keep_idx.layer0"]!.data)) {
      // masked tokens get ~0 attention and can never be among the top 3 of 8 unmasked ones
      expect.fail("a masked video token was kept");
    }
  });

  it("makes later layers cross-attend to the pruned video tokens and mask", () => {
    const result = prune(twoCrossLayers(), 0.5, [0]);
    verifyGraph(result);
    const [gatherVideo, gatherMask] = nodesOf(result, "gather");
    // k = ceil(0.5 * 10) = 5, plus the video CLS
    expect(gatherVideo!.outputs[0]!.shape).toEqual([2, 6, 16]);
    expect(gatherMask!.outputs[0]!.shape).toEqual([2, 6]);
    const k1 = result.nodes.find((n) => n.name === "layer.1.k")!;
    const v1 = result.nodes.find((n) => n.name === "layer.1.v")!;
    const k0 = result.nodes.find((n) => n.name === "layer.0.k")!;
    expect(k1.inputs[0]!.node).toBe(gatherVideo!.id);
    expect(v1.inputs[0]!.node).toBe(gatherVideo!.id);
    expect(k0.inputs[0]!.node).toBe(result.nodes.find((n) => n.role === "visualTokens")!.id);
    const [cross0, cross1] = result.nodes.filter((n) => n.role === "crossAttention");
    expect(cross0!.outputs[1]!.shape).toEqual([2, 2, 5, 11]);
    expect(cross1!.outputs[1]!.shape).toEqual([2, 2, 5, 6]);
    expect(cross1!.inputs[3]!.node).toBe(gatherMask!.id);
  });

  it("is a no-op at keep rate 1 and with no layers", () => {
    expect(pruneVisualTokens({ keepRate: 1, layers: [0] }).run(layer, undefined as never)).toBe(
      layer,
    );
    expect(pruneVisualTokens({ keepRate: 0.5, layers: [] }).run(layer, undefined as never)).toBe(
      layer,
    );
  });

  it("rejects bad keep rates and layers without cross-attention, naming the field", () => {
    for (const bad of [0, 1.5, Number.NaN]) {
      expect(() => prune(layer, bad, [0])).toThrow(ConfigError);
      expect(() => prune(layer, bad, [0])).toThrow(/sparsity\.visualTokens\.keepRate/);
    }
    let error: unknown;
    try {
      prune(layer, 0.5, [0, 1]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe("sparsity.visualTokens.layers");
    expect((error as Error).message).toContain("layer 1");
  });
});

/** Whether item 1 kept video token 4 or 7 (0-based among the 10 non-CLS tokens: 3 or 6). */
function item1MaskedKept(idx: Int32Array | Float32Array): boolean {
  const kept = Array.from(idx.subarray(3, 6));
  return kept.includes(3) || kept.includes(6);
}
