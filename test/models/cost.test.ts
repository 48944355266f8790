import { describe, expect, it } from "vitest";
import { ANALYZE_COST } from "../../passes/analyze-cost.js";
import { modelPipeline } from "../../passes/pipelines.js";
import { compileVision } from "../../src/api/compile.js";
import type { CostReport } from "../../src/cost.js";
import { analyzeCost } from "../../src/cost.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { buildVisionModel } from "../../src/models/beit.js";
import { MODELS } from "../../src/models/index.js";
import { visionPreset } from "../../src/models/presets.js";
import { runPasses } from "../../src/pass-manager.js";
import { customPattern, sharedLayout } from "../ir/support.js";
import { smallSpec } from "./support.js";

/** |got - want| <= 0.5% of want. */
function expectWithinHalfPercent(got: number, want: number): void {
  expect(Math.abs(got - want) / want).toBeLessThanOrEqual(0.005);
}

const G = 1e9;

describe("cost model: the SViTT table (design/platform-facts.md)", () => {
  const table = [
    { frames: 4, dense: 78.49, svitt: 48.67 },
    { frames: 8, dense: 179.56, svitt: 86.26 },
    { frames: 16, dense: 449.67, svitt: 153.29 },
  ];
  // The table counts the authors' computation, which runs each drop layer's projection and
  // FFN on every token before selecting: the pipeline without sink-token-selection.
  const asReference = (frames: number, variant: "svitt" | "dense") => {
    const program = MODELS.vision.build(visionPreset(frames, variant));
    const passes = modelPipeline(program.sparsity).filter((p) => p.name !== "sink-token-selection");
    return runPasses(program.graph, passes, { debug: 0 }).analyses.get(ANALYZE_COST) as CostReport;
  };
  for (const row of table) {
    it(`${row.frames} frames: dense ${row.dense} GMAC, SViTT ${row.svitt} GMAC`, () => {
      expectWithinHalfPercent(asReference(row.frames, "dense").totals.macs / G, row.dense);
      expectWithinHalfPercent(asReference(row.frames, "svitt").totals.macs / G, row.svitt);
    });

    it(`${row.frames} frames: sinking the selection saves (L - k) x 9 x 768^2 per drop`, () => {
      const reference = asReference(row.frames, "svitt");
      const compiled = compileVision(visionPreset(row.frames, "svitt")).cost;
      // at a drop layer L local tokens enter and k leave; the L - k dropped ones no longer
      // go through the output projection (768 x 768) and the FFN (2 x 768 x 3072)
      let saved = 0;
      for (const layer of reference.layers) {
        saved += (layer.tokensIn - layer.tokensOut) * 9 * 768 * 768;
      }
      expect(saved).toBeGreaterThan(0);
      expect(reference.totals.macs - compiled.totals.macs).toBe(saved);
    });
  }

  it("8 frames, attention alone: dense 45.38 GMAC, sparse 4.08 GMAC", () => {
    const dense = compileVision(visionPreset(8, "dense"));
    const svitt = compileVision(visionPreset(8, "svitt"));
    expectWithinHalfPercent(dense.cost.totals.attentionMacs / G, 45.38);
    expectWithinHalfPercent(svitt.cost.totals.attentionMacs / G, 4.08);
  });
});

describe("cost model: formulas checked by hand", () => {
  it("one dense layer: linear, attention and patch embedding MACs", () => {
    // hidden C = 32, intermediate I = 64, N = 1 + 2*4*4 = 33 tokens, batch 1
    const spec = smallSpec({ model: { numLayers: 1 } });
    const report = analyzeCost(buildVisionModel(spec));
    const C = 32;
    const I = 64;
    const N = 33;
    const linear = N * (3 * C * C) + N * C * C + N * C * I + N * I * C; // q,k,v; output; FFN up, down
    const attention = N * N * C + N * N * C; // q.k and p.v over all heads
    const embedding = 32 * C * (3 * 8 * 8); // 32 patches x C outputs x Cin*p*p
    expect(linear).toBe(270336);
    expect(attention).toBe(69696);
    expect(embedding).toBe(196608);
    expect(report.layers).toHaveLength(1);
    expect(report.layers[0]).toMatchObject({
      layer: 0,
      tokensIn: 33,
      tokensOut: 33,
      keysPerQuery: 33,
      attention: "dense",
      linearMacs: linear,
      attentionMacs: attention,
    });
    expect(report.totals).toMatchObject({
      linearMacs: linear,
      attentionMacs: attention,
      embeddingMacs: embedding,
      macs: linear + attention + embedding,
    });
  });

  it("scales linear and attention MACs with the batch", () => {
    const one = analyzeCost(buildVisionModel(smallSpec({ model: { numLayers: 1 } }))).totals;
    const three = analyzeCost(
      buildVisionModel(smallSpec({ model: { numLayers: 1 }, batch: 3 })),
    ).totals;
    expect(three.macs).toBe(3 * one.macs);
  });

  it("block-sparse attention: dense global rows plus padded local blocks", () => {
    // G = 1, L = 20 local tokens, block 8 -> M = 3 blocks (last one padded to 24), W = 2
    const b = new GraphBuilder("bsa");
    const x = b.input("x", { dtype: "f32", shape: [2, 21, 16] });
    const layout = sharedLayout([
      [0, 1],
      [1, 2],
      [2, 0],
    ]);
    b.add("blockSparseAttention", [x, x, x], {
      heads: 2,
      pattern: customPattern(8, layout),
      padding: "reference",
      relPosBias: null,
    });
    const report = analyzeCost(b.build());
    // global: 1 query x 21 keys; local: 3 blocks x 8 queries x (1 + 2*8) keys; x2 products x C x B
    const pairs = 1 * 21 + 3 * 8 * (1 + 2 * 8);
    expect(report.totals.attentionMacs).toBe(2 * 2 * pairs * 16);
    expect(report.totals.linearMacs).toBe(0);
  });

  it("counts bytes read and written, and weight bytes once", () => {
    const b = new GraphBuilder("bytes");
    const x = b.input("x", { dtype: "f32", shape: [2, 3] });
    const w = b.weight("w", [5, 3]);
    b.add1("linear", [x, w], {});
    b.add1("linear", [x, w], {});
    const report = analyzeCost(b.build());
    // each linear reads x (6) and w (15) and writes 10 floats: 31 * 4 bytes
    expect(report.totals.bytes).toBe(2 * 31 * 4);
    expect(report.totals.weightBytes).toBe(15 * 4);
    expect(report.totals.linearMacs).toBe(2 * (2 * 5 * 3));
  });
});
