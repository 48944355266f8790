import { describe, expect, it } from "vitest";
import { visionPipeline } from "../../passes/pipelines.js";
import { compileVision } from "../../src/api/compile.js";
import { nodesOf } from "../../src/ir/graph.js";
import { verifyGraph } from "../../src/ir/verify.js";
import type { SparsityConfig } from "../../src/models/config.js";
import { NO_SPARSITY, smallSpec } from "../models/support.js";

const SPARSE: SparsityConfig = {
  attention: { blockSize: 8, local: 1, random: 1, seed: 0, perHead: false, padding: "reference" },
  tokens: { keepRate: 0.7, dropAfter: [1] },
  tokenOrder: "zcurve",
};

describe("vision pipeline", () => {
  it("orders its passes: reorder, prune, sink the selection, sparsify, dead code, cost", () => {
    const names = visionPipeline({ sparsity: SPARSE, window: [2, 4, 4], globalTokens: 1 }).map(
      (p) => p.name,
    );
    expect(names).toEqual([
      "reorder-tokens",
      "prune-tokens",
      "sink-token-selection",
      "sparsify-attention",
      "eliminate-dead-code",
      "analyze-cost",
    ]);
    const dense = visionPipeline({ sparsity: NO_SPARSITY, window: [2, 4, 4], globalTokens: 1 });
    expect(dense.map((p) => p.name)).toEqual(["eliminate-dead-code", "analyze-cost"]);
  });

  it("compiles a small SViTT encoder: layouts fit each layer's pruned token count", () => {
    const compiled = compileVision(smallSpec({ sparsity: SPARSE }));
    verifyGraph(compiled.graph);
    expect(compiled.timings.map((t) => t.pass)).toEqual([
      "reorder-tokens",
      "prune-tokens",
      "sink-token-selection",
      "sparsify-attention",
      "eliminate-dead-code",
      "analyze-cost",
    ]);
    // 32 tokens in layers 0-1, then ceil(0.7 * 32) = 23 in layer 2
    const attn = nodesOf(compiled.graph, "blockSparseAttention").map((n) => [
      n.layer,
      n.outputs[0]!.shape[1],
      n.attrs.pattern.layout.queryBlocks,
      n.attrs.pattern.layout.blocksPerRow,
    ]);
    expect(attn).toEqual([
      [0, 33, 4, 2],
      [1, 33, 4, 2],
      [2, 24, 3, 2], // 23 tokens in blocks of 8: 3 blocks, the last padded
    ]);
    expect(nodesOf(compiled.graph, "attention")).toHaveLength(0);
    expect(compiled.cost.layers.map((l) => [l.layer, l.tokensIn, l.tokensOut])).toEqual([
      [0, 33, 33],
      [1, 33, 24],
      [2, 24, 24],
    ]);
    expect(compiled.graph.outputs.map((o) => o.name).sort()).toEqual([
      "last_hidden_state",
      "pooler_output",
      "token_idx.0",
    ]);
  });
});
