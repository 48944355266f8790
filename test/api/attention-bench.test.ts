import { describe, expect, it } from "vitest";
import { loadBackend } from "../../backends/registry.js";
import { layerTokenCounts } from "../../bench/attention.bench.js";
import { attentionGraphs, attentionInputs, benchAttention } from "../../src/api/attention-bench.js";
import { analyzeCost } from "../../src/cost.js";
import { ConfigError } from "../../src/ir/errors.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { spreadTokenIndex } from "../../src/models/beit.js";
import { initWeights } from "../../src/models/init.js";

describe("attention-only graphs", () => {
  it("take the token index as a run-time input when asked, at a pruned token count", () => {
    const { dense, sparse, tokens } = attentionGraphs(2, { tokenIndex: "input", keptTokens: 250 });
    expect(tokens).toBe(251);
    for (const graph of [dense, sparse]) {
      verifyGraph(graph);
      const index = graph.nodes.find((n) => n.op === "input" && n.attrs.name === "token_idx");
      expect(index?.outputs[0]).toEqual({ dtype: "i32", shape: [1, 250] });
    }
    expect(sparse.nodes.some((n) => n.op === "blockSparseAttention")).toBe(true);
    expect(dense.nodes.some((n) => n.op === "blockSparseAttention")).toBe(false);
    // 250 local tokens in blocks of 56 make 5 query blocks, each reading 4 blocks + CLS.
    expect(analyzeCost(sparse).layers[0]!.keysPerQuery).toBeCloseTo(225, 0);
  });

  it("reject a kept token count outside the window", () => {
    expect(() => attentionGraphs(1, { keptTokens: 197 })).toThrow(ConfigError);
    expect(() => attentionGraphs(1, { keptTokens: 0 })).toThrow(/keptTokens/);
  });

  it("spread the synthetic token index ascending, without repeats, inside the window", () => {
    const index = spreadTokenIndex(392, 275).data;
    expect(index.length).toBe(275);
    for (let i = 1; i < index.length; i++) expect(index[i]!).toBeGreaterThan(index[i - 1]!);
    expect(index[index.length - 1]!).toBeLessThan(392);
  });

  it("give a run-time and a constant identity token index the same results", async () => {
    const reference = await loadBackend("reference");
    const given = attentionGraphs(1, { tokenIndex: "input" }).sparse;
    const constant = attentionGraphs(1).sparse;
    const inputs = attentionInputs(given, 1);
    // All 196 tokens kept: the spread index is the identity.
    expect(Array.from(inputs.token_idx!.data)).toEqual(Array.from({ length: 196 }, (_, i) => i));
    const weights = initWeights(given, 0);
    const a = await (await reference.compile(given, weights)).run(inputs);
    const { token_idx: _, ...qkv } = inputs;
    const b = await (await reference.compile(constant, weights)).run(qkv);
    expect(Array.from(a.context!.data)).toEqual(Array.from(b.context!.data));
  });
});

describe("benchAttention", () => {
  it("times both variants on one backend and reports their attention MACs", async () => {
    // 2 frames: 392 local tokens in 7 blocks, of which each query block reads 4.
    const result = await benchAttention({ frames: 2, backend: "reference", reps: 1 });
    expect(result.tokens).toBe(393);
    expect(result.sparseMs).toBeGreaterThan(0);
    expect(result.denseMs).toBeGreaterThan(0);
    const { dense, sparse } = attentionGraphs(2, { tokenIndex: "input" });
    expect(result.sparseMacs).toBe(analyzeCost(sparse).totals.attentionMacs);
    expect(result.denseMacs).toBe(analyzeCost(dense).totals.attentionMacs);
    expect(result.sparseMacs).toBeLessThan(result.denseMacs);
  });
});

describe("the attention benchmark's layer token counts", () => {
  it("follow the SViTT drops: 1569 x4, 942 x3, 566 x3, 340 x2 at 8 frames", () => {
    expect([...layerTokenCounts(8)]).toEqual([
      [1569, 4],
      [942, 3],
      [566, 3],
      [340, 2],
    ]);
  });
});
