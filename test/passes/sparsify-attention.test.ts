import { describe, expect, it } from "vitest";
import { sparsifyAttention, type PatternSource } from "../../passes/sparsify-attention.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { ConfigError } from "../../src/ir/errors.js";
import { type AnyNode, type Graph, nodesOf } from "../../src/ir/graph.js";
import type { BlockLayout } from "../../src/ir/pattern.js";
import { printGraph } from "../../src/ir/print.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { buildVisionModel } from "../../src/models/beit.js";
import { buildBertLayer } from "../../src/models/bert.js";
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
    const error = configError(() =>
      run(dense, { pattern: { ...SVITT, random: 4 }, padding: "reference" }),
    );
    expect(error.field).toBe("sparsity.attention.random");
    expect(error.message).toContain("layer 0");
  });
});
