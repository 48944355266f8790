import { describe, expect, it } from "vitest";
import { keptTokenCount, pruneTokens } from "../../passes/prune-tokens.js";
import { runReference } from "../../backends/reference/index.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { ConfigError } from "../../src/ir/errors.js";
import { type Graph, nodesOf } from "../../src/ir/graph.js";
import { printGraph } from "../../src/ir/print.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { beitLayer, buildVisionModel, identityTokenIndex } from "../../src/models/beit.js";
import type { BeitConfig } from "../../src/models/config.js";
import { runPasses } from "../../src/pass-manager.js";
import { withNode } from "../ir/support.js";
import { randomPixels, randomWeights, SMALL_MODEL, smallSpec } from "../models/support.js";

const CFG: BeitConfig = { ...SMALL_MODEL, numLayers: 2 };
const WINDOW = [2, 4, 4] as const;

/** Two BEiT layers over an input sequence of 1 + 32 tokens (no embedding). */
function encoder(): Graph {
  const b = new GraphBuilder("enc");
  const x = b.input("hidden_states", { dtype: "f32", shape: [1, 33, 32] }, "encoderInput");
  const idx = identityTokenIndex(b, 32);
  let h = x;
  for (let i = 0; i < 2; i++) {
    h = b.withScope(`layer.${i}`, () => beitLayer(b, h, CFG, i, idx, WINDOW)).output;
  }
  b.output("last_hidden_state", h);
  return b.build();
}

/** What prune-tokens after layer 0 should produce, written out by hand (k tokens kept). */
function expectedPrunedEncoder(k: number): Graph {
  const b = new GraphBuilder("enc");
  const x = b.input("hidden_states", { dtype: "f32", shape: [1, 33, 32] }, "encoderInput");
  const idx = identityTokenIndex(b, 32);
  const l0 = b.withScope("layer.0", () => beitLayer(b, x, CFG, 0, idx, WINDOW));
  const site = "layer.0.residual_2";
  const meta = (suffix: string) => ({ name: `${site}.prune.${suffix}`, layer: 0, role: null });
  const scores = b.add1("tokenScores", [l0.clsProbs], { row: 0, skip: 1 }, meta("scores"));
  const keep = b.add1("topK", [scores], { k }, meta("topk"));
  const tokens = b.add1(
    "gather",
    [l0.output, keep],
    { axis: 1, keepPrefix: 1 },
    { ...meta("tokens"), role: "layerOutput" },
  );
  const keptIdx = b.add1("gather", [idx, keep], { axis: 1, keepPrefix: 0 }, meta("token_index"));
  b.output("token_idx.0", keptIdx);
  const l1 = b.withScope("layer.1", () => beitLayer(b, tokens, CFG, 1, keptIdx, WINDOW));
  b.output("last_hidden_state", l1.output);
  const graph = b.build();
  // the layer's own residual add is no longer the layer output: the gather is
  return withNode(graph, l0.output.node, { role: null });
}

function prune(graph: Graph, keepRate: number, afterLayers: number[]): Graph {
  return runPasses(graph, [pruneTokens({ keepRate, afterLayers })], { debug: 0 }).graph;
}

function configError(body: () => unknown): ConfigError {
  try {
    body();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("keptTokenCount", () => {
  it("is ceil(keep * L) with the product in float64", () => {
    expect(keptTokenCount(0.7, 32)).toBe(23); // 22.4 -> 23
    expect(keptTokenCount(0.5, 32)).toBe(16); // exactly 16
    expect(keptTokenCount(0.7, 23)).toBe(17); // 16.099999999999998 -> 17
    expect(keptTokenCount(0.1, 30)).toBe(3); // 0.1 * 30 is exactly 3 in float64
    expect(keptTokenCount(1, 32)).toBe(32);
    expect(keptTokenCount(0.001, 32)).toBe(1);
  });
});

describe("prune-tokens", () => {
  it("inserts tokenScores -> topK -> gather after the layer and rewires later layers", () => {
    const result = prune(encoder(), 0.7, [0]);
    expect(printGraph(result)).toBe(printGraph(expectedPrunedEncoder(23)));
  });

  it("keeps exactly ceil(0.5 * 32) = 16 tokens when the product is an integer", () => {
    const result = prune(encoder(), 0.5, [0]);
    expect(printGraph(result)).toBe(printGraph(expectedPrunedEncoder(16)));
  });

  it("prunes after exactly the listed layers of the vision model, shrinking later shapes", () => {
    const dense = buildVisionModel(smallSpec({ model: { numLayers: 4 } }));
    const result = prune(dense, 0.7, [0, 2]);
    verifyGraph(result);
    const topKs = nodesOf(result, "topK").map((n) => [n.layer, n.attrs.k]);
    // 32 -> ceil(22.4) = 23 after layer 0; 23 -> ceil(16.1) = 17 after layer 2
    expect(topKs).toEqual([
      [0, 23],
      [2, 17],
    ]);
    expect(nodesOf(result, "tokenScores").map((n) => n.layer)).toEqual([0, 2]);
    expect(nodesOf(result, "gather").map((n) => [n.layer, n.outputs[0]!.shape])).toEqual([
      [0, [1, 24, 32]],
      [0, [1, 23]],
      [2, [1, 18, 32]],
      [2, [1, 17]],
    ]);
    const tokensIn = nodesOf(result, "attention").map((n) => [n.layer, n.outputs[0]!.shape[1]]);
    expect(tokensIn).toEqual([
      [0, 33],
      [1, 24],
      [2, 24],
      [3, 18],
    ]);
    // one layerOutput per layer, with the pruned token count
    const layerOutputs = result.nodes
      .filter((n) => n.role === "layerOutput")
      .map((n) => [n.layer, n.op, n.outputs[0]!.shape[1]]);
    expect(layerOutputs).toEqual([
      [0, "gather", 24],
      [1, "add", 24],
      [2, "gather", 18],
      [3, "add", 18],
    ]);
    // later layers read the pruned token index: layer 1 the first gather, layer 3 the second
    const indexGathers = nodesOf(result, "gather").filter((n) => n.outputs[0]!.dtype === "i32");
    const attn = nodesOf(result, "attention");
    expect(attn[0]!.inputs[4]!.node).toBe(result.nodes.find((n) => n.role === "tokenIndex")!.id);
    expect(attn[1]!.inputs[4]!.node).toBe(indexGathers[0]!.id);
    expect(attn[2]!.inputs[4]!.node).toBe(indexGathers[0]!.id);
    expect(attn[3]!.inputs[4]!.node).toBe(indexGathers[1]!.id);
    // the second index gather maps through the first (original numbering)
    expect(indexGathers[1]!.inputs[0]!.node).toBe(indexGathers[0]!.id);
    const outputs = Object.fromEntries(
      result.outputs.map((o) => [o.name, result.nodes[o.ref.node]!.outputs[o.ref.output]]),
    );
    expect(outputs["token_idx.0"]).toEqual({ dtype: "i32", shape: [1, 23] });
    expect(outputs["token_idx.1"]).toEqual({ dtype: "i32", shape: [1, 17] });
    expect(outputs.last_hidden_state).toEqual({ dtype: "f32", shape: [1, 18, 32] });
    expect(outputs.pooler_output).toEqual({ dtype: "f32", shape: [1, 32] });
  });

  it("keeps the tokens with the highest mean-over-heads CLS attention, ascending", () => {
    const spec = smallSpec({ model: { numLayers: 2 } });
    const dense = buildVisionModel(spec, { diagnostics: true });
    const weights = randomWeights(dense, 3);
    const inputs = { pixel_values: randomPixels(spec, 4) };
    const before = runReference(dense, weights, inputs);
    const after = runReference(prune(dense, 0.7, [0]), weights, inputs);
    // naive selection from the dense run's layer-0 CLS probabilities [1, 4, 1, 33]
    const probs = before["cls_attention_probs.layer0"]!.data;
    const scores = Array.from({ length: 32 }, (_, j) => {
      let s = 0;
      for (let h = 0; h < 4; h++) s += probs[h * 33 + 1 + j]!;
      return s / 4;
    });
    const order = scores.map((s, j) => [s, j] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    const kept = order
      .slice(0, 23)
      .map(([, j]) => j)
      .sort((a, b) => a - b);
    expect(Array.from(after["token_idx.0"]!.data)).toEqual(kept);
    // hidden states entering layer 1: CLS row, then the kept rows of the dense layer-0 output
    const full = before["hidden_states.1"]!.data;
    const rows = [0, ...kept.map((j) => j + 1)];
    const expected = rows.flatMap((r) => Array.from(full.subarray(r * 32, (r + 1) * 32)));
    expect(after["hidden_states.1"]!.shape).toEqual([1, 24, 32]);
    expect(Array.from(after["hidden_states.1"]!.data)).toEqual(expected);
  });

  it("is a no-op at keep rate 1 and with no layers", () => {
    const graph = encoder();
    expect(pruneTokens({ keepRate: 1, afterLayers: [0, 1] }).run(graph, undefined as never)).toBe(
      graph,
    );
    expect(pruneTokens({ keepRate: 0.5, afterLayers: [] }).run(graph, undefined as never)).toBe(
      graph,
    );
  });

  for (const bad of [0, -0.1, 1.5, Number.NaN]) {
    it(`rejects keep rate ${bad} with a ConfigError naming the field`, () => {
      const error = configError(() => prune(encoder(), bad, [0]));
      expect(error.field).toBe("sparsity.tokens.keepRate");
      expect(error.message).toContain('config field "sparsity.tokens.keepRate"');
    });
  }

  it("rejects a layer without attention, naming the field", () => {
    const error = configError(() => prune(encoder(), 0.7, [0, 7]));
    expect(error.field).toBe("sparsity.tokens.dropAfter");
    expect(error.message).toContain("layer 7");
  });

  it("rejects a graph without a token index", () => {
    const b = new GraphBuilder("noidx");
    const x = b.input("x", { dtype: "f32", shape: [1, 5, 8] });
    const [ctx] = b.inLayer(0, () =>
      b.add("attention", [x, x, x], {
        heads: 2,
        numCls: 1,
        probs: "cls",
        mask: false,
        relPosBias: null,
      }),
    );
    b.output(
      "y",
      b.inLayer(0, () => b.add1("add", [ctx!, x], {}, { role: "layerOutput" })),
    );
    const error = configError(() => prune(b.build(), 0.5, [0]));
    expect(error.field).toBe("sparsity.tokens");
  });
});
