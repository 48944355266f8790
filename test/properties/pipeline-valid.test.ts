/**
 * Every pass leaves the graph valid, for random valid specs of a small SViTT encoder, and
 * the cost report of the result is consistent with the graph (formulas recomputed here).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { pruneVisualTokens } from "../../passes/prune-visual-tokens.js";
import { visionPipeline } from "../../passes/pipelines.js";
import { runReference } from "../../backends/reference/index.js";
import { compileVision } from "../../src/api/compile.js";
import { analyzeCost } from "../../src/cost.js";
import { type Graph, nodesOf } from "../../src/ir/graph.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { buildVisionModel } from "../../src/models/beit.js";
import { buildBertLayer } from "../../src/models/bert.js";
import { tokenWindow, type VisionModelSpec } from "../../src/models/config.js";
import type { PassContext } from "../../src/pass-manager.js";
import { randomPixels, randomWeights, SMALL_MODEL } from "../models/support.js";

const CONTEXT: PassContext = { debug: 0, log: () => undefined, analyses: new Map() };

/** A random valid spec and the local token count each layer sees, derived by hand. */
const specs = fc
  .record({
    frames: fc.integer({ min: 1, max: 3 }),
    side: fc.constantFrom(2, 4), // 16 or 32 px at patch 8
    heads: fc.constantFrom(2, 4),
    headDim: fc.constantFrom(4, 8),
    layers: fc.integer({ min: 1, max: 4 }),
    dropMask: fc.integer({ min: 0, max: 15 }),
    keepRate: fc.oneof(
      { arbitrary: fc.constant(1), weight: 1 },
      { arbitrary: fc.double({ min: 0.01, max: 1, noNaN: true }), weight: 3 },
    ),
    blockPick: fc.nat(),
    blockDividesL: fc.boolean(),
    local: fc.constantFrom(0, 1, 3),
    randomPick: fc.nat(),
    tokenOrder: fc.constantFrom("none" as const, "zcurve" as const, "hilbert" as const),
    padding: fc.constantFrom("reference" as const, "masked" as const),
    perHead: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1000 }),
    batch: fc.integer({ min: 1, max: 2 }),
  })
  .map((r) => {
    const L = r.frames * r.side * r.side;
    const dropAfter = Array.from({ length: r.layers }, (_, i) => i).filter(
      (i) => (r.dropMask >> i) & 1,
    );
    const tokensPerLayer: number[] = [];
    let current = L;
    for (let i = 0; i < r.layers; i++) {
      tokensPerLayer.push(current);
      if (dropAfter.includes(i) && r.keepRate < 1) current = Math.ceil(r.keepRate * current);
    }
    const smallest = Math.min(...tokensPerLayer);
    const divisors = Array.from({ length: L }, (_, i) => i + 1).filter((d) => L % d === 0);
    const blockSize = r.blockDividesL
      ? divisors[r.blockPick % divisors.length]!
      : 1 + (r.blockPick % L);
    const blocks = Math.ceil(smallest / blockSize);
    const local = r.local <= blocks ? r.local : 1;
    const maxRandom = blocks - local;
    let random = r.randomPick % (maxRandom + 1);
    if (local + random === 0) random = 1; // local 0 needs a random block (blocks >= 1)
    const spec: VisionModelSpec = {
      model: {
        ...SMALL_MODEL,
        hiddenSize: r.heads * r.headDim,
        numHeads: r.heads,
        numLayers: r.layers,
        intermediateSize: 32,
        imageSize: r.side * 8,
      },
      frames: r.frames,
      batch: r.batch,
      sparsity: {
        attention: {
          blockSize,
          local,
          random,
          seed: r.seed,
          perHead: r.perHead,
          padding: r.padding,
        },
        tokens: { keepRate: r.keepRate, dropAfter },
        tokenOrder: r.tokenOrder,
      },
    };
    return { spec, tokensPerLayer };
  });

function attentionMacs(graph: Graph): Map<number, number> {
  const report = analyzeCost(graph);
  return new Map(report.layers.map((l) => [l.layer, l.attentionMacs]));
}

describe("every pass leaves the graph valid", () => {
  it("for random valid SViTT specs, pass by pass, and the result runs", () => {
    fc.assert(
      fc.property(specs, ({ spec, tokensPerLayer }) => {
        let graph = verifyGraph(buildVisionModel(spec));
        const passes = visionPipeline({
          sparsity: spec.sparsity,
          window: tokenWindow(spec.model, spec.frames),
          globalTokens: 1,
        });
        for (const pass of passes) {
          graph = pass.run(graph, CONTEXT);
          expect(() => verifyGraph(graph), `after ${pass.name}`).not.toThrow();
        }
        // every layer's attention sees the token count derived by hand
        const seen = nodesOf(graph, "blockSparseAttention").map((n) => n.outputs[0]!.shape[1]! - 1);
        expect(seen).toEqual(tokensPerLayer);
        const out = runReference(graph, randomWeights(graph, 1), {
          pixel_values: randomPixels(spec, 2),
        });
        for (const t of Object.values(out)) {
          expect(Array.from(t.data).every(Number.isFinite)).toBe(true);
        }
      }),
      { numRuns: 30 },
    );
  });

  it("and the cost report matches the graph", () => {
    fc.assert(
      fc.property(specs, ({ spec, tokensPerLayer }) => {
        const compiled = compileVision(spec);
        const { layers, totals } = compiled.cost;
        expect(totals.macs).toBe(totals.linearMacs + totals.attentionMacs + totals.embeddingMacs);
        expect(layers.reduce((s, l) => s + l.attentionMacs, 0)).toBe(totals.attentionMacs);
        expect(layers.reduce((s, l) => s + l.linearMacs, 0)).toBe(totals.linearMacs);
        expect(layers.map((l) => l.tokensIn)).toEqual(tokensPerLayer.map((t) => t + 1));
        const width = spec.model.hiddenSize;
        const B = spec.batch;
        // block-sparse MACs: 2 B C (G N + M bs (G + W bs)) per layer
        const sparseNodes = nodesOf(compiled.graph, "blockSparseAttention");
        expect(sparseNodes).toHaveLength(spec.model.numLayers);
        let everyLayerStrictlySmaller = true;
        for (const node of sparseNodes) {
          const n = node.outputs[0]!.shape[1]!;
          const { blockSize: bs, layout } = node.attrs.pattern;
          const expected =
            2 * B * width * (n + layout.queryBlocks * bs * (1 + layout.blocksPerRow * bs));
          const layer = layers.find((l) => l.layer === node.layer)!;
          expect(layer.attentionMacs).toBe(expected);
          const unpadded = layout.queryBlocks * bs === n - 1;
          const smaller = layout.blocksPerRow < layout.queryBlocks;
          if (smaller && unpadded) {
            expect(layer.attentionMacs).toBeLessThan(2 * B * width * n * n);
          } else {
            everyLayerStrictlySmaller = false;
          }
        }
        // the same spec without edge sparsity: per layer dense attention 2 B C N^2
        const dense = compileVision({ ...spec, sparsity: { ...spec.sparsity, attention: null } });
        const denseMacs = attentionMacs(dense.graph);
        for (const [i, t] of tokensPerLayer.entries()) {
          expect(denseMacs.get(i)).toBe(2 * B * width * (t + 1) * (t + 1));
        }
        expect(dense.cost.totals.linearMacs).toBe(totals.linearMacs);
        if (everyLayerStrictlySmaller) {
          expect(totals.attentionMacs).toBeLessThan(dense.cost.totals.attentionMacs);
          expect(totals.macs).toBeLessThan(dense.cost.totals.macs);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("sparse attention costs less than dense when every layout is strictly smaller", () => {
    // 32 tokens in 4 unpadded blocks of 8, each row reading 2 of them
    const spec: VisionModelSpec = {
      model: SMALL_MODEL,
      frames: 2,
      batch: 1,
      sparsity: {
        attention: {
          blockSize: 8,
          local: 1,
          random: 1,
          seed: 0,
          perHead: false,
          padding: "reference",
        },
        tokens: null,
        tokenOrder: "none",
      },
    };
    const sparse = compileVision(spec).cost.totals;
    const dense = compileVision({ ...spec, sparsity: { ...spec.sparsity, attention: null } }).cost
      .totals;
    // per layer 2 * 32 * (33 + 4 * 8 * (1 + 16)) = 36928 vs 2 * 32 * 33 * 33 = 69696
    expect(sparse.attentionMacs).toBe(3 * 36928);
    expect(dense.attentionMacs).toBe(3 * 69696);
  });

  it("for prune-visual-tokens on random BERT layer shapes", () => {
    fc.assert(
      fc.property(
        fc.record({
          batch: fc.integer({ min: 1, max: 2 }),
          text: fc.integer({ min: 1, max: 6 }),
          video: fc.integer({ min: 2, max: 20 }),
          keepRate: fc.double({ min: 0.01, max: 1, noNaN: true }),
        }),
        ({ batch, text, video, keepRate }) => {
          const graph = buildBertLayer(
            {
              hiddenSize: 16,
              numHeads: 2,
              intermediateSize: 32,
              layerNormEps: 1e-12,
              encoderWidth: 8,
            },
            { batch, textTokens: text, visualTokens: video },
          );
          const result = verifyGraph(
            pruneVisualTokens({ keepRate, layers: [0] }).run(graph, CONTEXT),
          );
          const kept = result.outputs.find((o) => o.name === "visual_keep_idx.layer0");
          if (keepRate === 1) {
            expect(kept).toBeUndefined();
          } else {
            const k = Math.ceil(keepRate * (video - 1));
            expect(result.nodes[kept!.ref.node]!.outputs[0]!.shape).toEqual([batch, k]);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
