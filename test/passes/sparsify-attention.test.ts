import { describe, expect, it } from "vitest";
import { pruneTokens } from "../../passes/prune-tokens.js";
import { compileVision } from "../../src/api/compile.js";
import { sparsifyAttention, type PatternSource } from "../../passes/sparsify-attention.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { ConfigError } from "../../src/ir/errors.js";
import { type AnyNode, type Graph, nodesOf } from "../../src/ir/graph.js";
import type { BlockLayout, PaddingMode } from "../../src/ir/pattern.js";
import { printGraph } from "../../src/ir/print.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { buildVisionModel } from "../../src/models/beit.js";
import { buildBertLayer } from "../../src/models/bert.js";
import { visionPreset } from "../../src/models/presets.js";
import { runPasses } from "../../src/pass-manager.js";
import { signature } from "../ir/support.js";
import { smallSpec } from "../models/support.js";

const SVITT: PatternSource = {
  kind: "svitt",
  blockSize: 8,
  local: 1,
  random: 2,
  seed: 0,
  perHead: false,
};

function run(graph: Graph, options: Parameters<typeof sparsifyAttention>[0]): Graph {
  return runPasses(graph, [sparsifyAttention(options)], { debug: 0 }).graph;
}

function rows(layout: BlockLayout, head = 0): number[][] {
  const out: number[][] = [];
  const h = layout.heads === 1 ? 0 : head;
  for (let m = 0; m < layout.queryBlocks; m++) {
    const start = (h * layout.queryBlocks + m) * layout.blocksPerRow;
    out.push(Array.from(layout.blocks.slice(start, start + layout.blocksPerRow)));
  }
  return out;
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

/** One attention node over inputs of the given shapes, plus its outputs. */
function singleAttention(
  qShape: number[],
  kShape: number[],
  attrs: { numCls: number; probs: "cls" | "all"; mask: boolean },
): Graph {
  const b = new GraphBuilder("single");
  const q = b.input("q", { dtype: "f32", shape: qShape });
  const k = b.input("k", { dtype: "f32", shape: kShape });
  const inputs = [q, k, k];
  if (attrs.mask) inputs.push(b.input("mask", { dtype: "f32", shape: [kShape[0]!, kShape[1]!] }));
  const [ctx, probs] = b.inLayer(0, () =>
    b.add("attention", inputs, { heads: 2, ...attrs, relPosBias: null }, { name: "attn" }),
  );
  b.output("context", ctx!);
  b.output("probs", probs!);
  return b.build();
}

describe("sparsify-attention", () => {
  const dense = buildVisionModel(smallSpec({ model: { numLayers: 2 } }));

  it("replaces every encoder self-attention by block-sparse attention, nothing else", () => {
    const result = run(dense, { pattern: SVITT, padding: "reference" });
    // expected: the same node list with each attention op swapped; output types unchanged
    // ([1,33,32] context and [1,4,1,33] CLS probabilities)
    const expected = signature(dense).map((s) =>
      s.startsWith("attention ") ? `blockSparseAttention ${s.slice("attention ".length)}` : s,
    );
    expect(signature(result)).toEqual(expected);
    expect(expected.filter((s) => s.startsWith("blockSparseAttention"))).toEqual([
      "blockSparseAttention f32[1,33,32], f32[1,4,1,33]",
      "blockSparseAttention f32[1,33,32], f32[1,4,1,33]",
    ]);
    const before = nodesOf(dense, "attention");
    const after = nodesOf(result, "blockSparseAttention");
    expect(after.map((n) => [n.id, n.name, n.layer])).toEqual(
      before.map((n) => [n.id, n.name, n.layer]),
    );
    for (const [i, node] of after.entries()) {
      // same inputs: q, k, v, bias table, token index
      expect(node.inputs).toEqual(before[i]!.inputs);
      expect(node.attrs.heads).toBe(4);
      expect(node.attrs.padding).toBe("reference");
      expect(node.attrs.relPosBias).toEqual({ window: [2, 4, 4] });
      expect(node.attrs.pattern.globalTokens).toBe(1);
      expect(node.attrs.pattern.blockSize).toBe(8);
      expect(node.attrs.pattern.origin).toEqual({ kind: "svitt", local: 1, random: 2, seed: 0 });
    }
    verifyGraph(result);
  });

  it("derives a SViTT layout: block m first, then 2 distinct random non-local blocks, ascending", () => {
    const result = run(dense, { pattern: SVITT, padding: "reference" });
    for (const node of nodesOf(result, "blockSparseAttention")) {
      const { layout } = node.attrs.pattern;
      // 32 local tokens in blocks of 8 -> 4 query blocks, 1 local + 2 random per row
      expect([layout.heads, layout.queryBlocks, layout.blocksPerRow]).toEqual([1, 4, 3]);
      rows(layout).forEach((row, m) => {
        expect(row[0]).toBe(m);
        const randoms = row.slice(1);
        expect(randoms).not.toContain(m);
        expect(new Set(randoms).size).toBe(2);
        expect([...randoms].sort((a, b) => a - b)).toEqual(randoms);
        for (const r of randoms) expect(r >= 0 && r < 4).toBe(true);
      });
    }
  });

  it("takes explicit random blocks per layer and per-head draws when asked", () => {
    const explicit = [
      [1, 2],
      [0, 3],
      [0, 1],
      [1, 2],
    ];
    const result = run(dense, {
      pattern: { ...SVITT, randomBlocks: new Map([[1, explicit]]) },
      padding: "masked",
    });
    const [l0, l1] = nodesOf(result, "blockSparseAttention");
    expect(rows(l1!.attrs.pattern.layout)).toEqual([
      [0, 1, 2],
      [1, 0, 3],
      [2, 0, 1],
      [3, 1, 2],
    ]);
    expect(l1!.attrs.pattern.origin).toEqual({ kind: "svitt", local: 1, random: 2, seed: null });
    expect(l0!.attrs.pattern.origin).toMatchObject({ seed: 0 });
    expect(l1!.attrs.padding).toBe("masked");
    const perHead = run(dense, { pattern: { ...SVITT, perHead: true }, padding: "reference" });
    for (const node of nodesOf(perHead, "blockSparseAttention")) {
      expect(node.attrs.pattern.layout.heads).toBe(4);
      expect(node.attrs.pattern.layout.blocks.length).toBe(4 * 4 * 3);
    }
  });

  it("is deterministic for a seed", () => {
    const a = run(dense, { pattern: { ...SVITT, random: 3, local: 0 }, padding: "reference" });
    const b = run(dense, { pattern: { ...SVITT, random: 3, local: 0 }, padding: "reference" });
    expect(printGraph(a)).toBe(printGraph(b));
  });

  it("uses a custom layout function with the site it is told about", () => {
    const sites: unknown[] = [];
    const result = run(dense, {
      pattern: {
        kind: "custom",
        blockSize: 16,
        label: "pairs",
        layout: (site) => {
          sites.push(site);
          return { heads: 1, queryBlocks: 2, blocksPerRow: 1, blocks: Int32Array.from([1, 0]) };
        },
      },
      padding: "masked",
      layers: [0],
    });
    expect(sites).toEqual([
      {
        layer: 0,
        nodeName: "encoder.layer.0.attention.attention",
        localTokens: 32,
        globalTokens: 1,
        heads: 4,
      },
    ]);
    const [node] = nodesOf(result, "blockSparseAttention");
    expect(node!.attrs.pattern.origin).toEqual({ kind: "custom", label: "pairs" });
  });

  it("declines layers not listed", () => {
    const result = run(dense, { pattern: SVITT, padding: "reference", layers: [1] });
    const ops = result.nodes
      .filter((n) => n.op === "attention" || n.op === "blockSparseAttention")
      .map((n: AnyNode) => [n.op, n.layer]);
    expect(ops).toEqual([
      ["attention", 0],
      ["blockSparseAttention", 1],
    ]);
  });

  it("declines masked attention", () => {
    const graph = singleAttention([1, 9, 8], [1, 9, 8], { numCls: 1, probs: "cls", mask: true });
    expect(printGraph(run(graph, { pattern: SVITT, padding: "reference" }))).toBe(
      printGraph(graph),
    );
  });

  it("declines attention returning all probability rows", () => {
    const graph = singleAttention([1, 9, 8], [1, 9, 8], { numCls: 1, probs: "all", mask: false });
    expect(printGraph(run(graph, { pattern: SVITT, padding: "reference" }))).toBe(
      printGraph(graph),
    );
  });

  it("declines cross attention (queries and keys of different lengths)", () => {
    const graph = singleAttention([1, 9, 8], [1, 17, 8], { numCls: 1, probs: "cls", mask: false });
    expect(printGraph(run(graph, { pattern: SVITT, padding: "reference" }))).toBe(
      printGraph(graph),
    );
  });

  it("declines BERT text and cross attention (masked, all rows)", () => {
    const bert = buildBertLayer(
      { hiddenSize: 32, numHeads: 4, intermediateSize: 64, layerNormEps: 1e-12, encoderWidth: 24 },
      { batch: 1, textTokens: 5, visualTokens: 9 },
    );
    expect(printGraph(run(bert, { pattern: SVITT, padding: "reference" }))).toBe(printGraph(bert));
  });

  it("errors when asked for layers that have no matching attention", () => {
    const error = configError(() =>
      run(dense, { pattern: SVITT, padding: "reference", layers: [1, 5] }),
    );
    expect(error.field).toBe("sparsity.attention.layers");
    expect(error.message).toContain("sparsity.attention.layers");
    const graph = singleAttention([1, 9, 8], [1, 9, 8], { numCls: 1, probs: "all", mask: false });
    expect(
      configError(() => run(graph, { pattern: SVITT, padding: "reference", layers: [0] })).field,
    ).toBe("sparsity.attention.layers");
  });

  it("rejects patterns that do not fit the layer, naming the field and layer", () => {
    // 4 blocks: random 5 > M under either padding, random 4 > M - local under "masked"
    const error = configError(() =>
      run(dense, { pattern: { ...SVITT, random: 5 }, padding: "reference" }),
    );
    expect(error.field).toBe("sparsity.attention.random");
    expect(error.message).toContain("layer 0");
    const masked = configError(() =>
      run(dense, { pattern: { ...SVITT, random: 4 }, padding: "masked" }),
    );
    expect(masked.field).toBe("sparsity.attention.random");
    expect(masked.message).toContain("layer 0");
  });

  describe("after token pruning leaves M = 3 blocks for random 3", () => {
    // 32 tokens (M = 4) in layer 0; keep 0.7 after it leaves ceil(0.7 * 32) = 23 tokens, so
    // layers 1 and 2 have M = 3 blocks of 8 (the last padded) and only 2 non-local blocks.
    const three = buildVisionModel(smallSpec({ model: { numLayers: 3 } }));
    const pipeline = (padding: PaddingMode) =>
      runPasses(
        three,
        [
          pruneTokens({ keepRate: 0.7, afterLayers: [0] }),
          sparsifyAttention({ pattern: { ...SVITT, random: 3 }, padding }),
        ],
        { debug: 0 },
      ).graph;

    it('works under padding "reference": saturated rows [m, 0, 1, 2], verified', () => {
      const result = verifyGraph(pipeline("reference"));
      const [l0, l1, l2] = nodesOf(result, "blockSparseAttention");
      // layer 0: random 3 = the 3 non-local blocks, drawn (all of them, ascending)
      expect(rows(l0!.attrs.pattern.layout)).toEqual([
        [0, 1, 2, 3],
        [1, 0, 2, 3],
        [2, 0, 1, 3],
        [3, 0, 1, 2],
      ]);
      for (const node of [l1!, l2!]) {
        expect(rows(node.attrs.pattern.layout)).toEqual([
          [0, 0, 1, 2],
          [1, 0, 1, 2],
          [2, 0, 1, 2],
        ]);
        expect(node.attrs.padding).toBe("reference");
      }
    });

    it("lets the released SViTT preset compile at 2 frames (M = 7, 5, 4, 3 blocks)", () => {
      // 392 tokens -> 7 blocks of 56; drops after 3, 6, 9 at keep 0.7: 275, 193, 136 tokens
      // -> 5, 4, 3 blocks; the last two layers (M = 3) get saturated rows [m, 0, 1, 2].
      const { graph } = compileVision(visionPreset(2));
      verifyGraph(graph);
      const layouts = nodesOf(graph, "blockSparseAttention").map((n) => n.attrs.pattern.layout);
      expect(layouts.map((l) => l.queryBlocks)).toEqual([7, 7, 7, 7, 5, 5, 5, 4, 4, 4, 3, 3]);
      expect(layouts.every((l) => l.blocksPerRow === 4)).toBe(true);
      expect(rows(layouts[11]!)).toEqual([
        [0, 0, 1, 2],
        [1, 0, 1, 2],
        [2, 0, 1, 2],
      ]);
    });

    it('is an error under padding "masked", naming the first such layer', () => {
      const error = configError(() => pipeline("masked"));
      expect(error.field).toBe("sparsity.attention.random");
      expect(error.message).toContain("layer 1 (23 local tokens)");
      expect(error.message).toContain("3 random blocks exceed the 2 non-local blocks");
    });
  });
});
