import { describe, expect, it } from "vitest";
import { compileVision } from "../../../src/api/compile.js";
import type { PaddingMode } from "../../../src/ir/pattern.js";
import { initWeights, syntheticClip } from "../../../src/models/init.js";
import { expectParity, MODES, runGpujs, smallSpec, toleranceFor } from "./helpers.js";

/**
 * Whole compiled SViTT encoders (patch embedding, block-sparse attention with relative
 * position bias, token pruning, pooling) on gpujs against the reference backend, with
 * seeded weights and inputs.
 */

const CASES: readonly { padding: PaddingMode; perHead: boolean; blockSize: number }[] = [
  { padding: "reference", perHead: true, blockSize: 8 },
  { padding: "masked", perHead: true, blockSize: 8 },
  { padding: "reference", perHead: false, blockSize: 8 },
  // 32 local tokens in blocks of 6: the last block is padded (2 real tokens, 4 padding).
  { padding: "reference", perHead: true, blockSize: 6 },
  { padding: "masked", perHead: false, blockSize: 6 },
];

describe.each(MODES)("small SViTT encoder on gpujs %s mode matches the reference", (mode) => {
  for (const { padding, perHead, blockSize } of CASES) {
    it(`padding ${padding}, ${perHead ? "per-head" : "shared"} layouts, block ${blockSize}`, async () => {
      const { graph } = compileVision(smallSpec(padding, perHead, { batch: 2, blockSize }));
      expect(graph.nodes.some((n) => n.op === "blockSparseAttention")).toBe(true);
      expect(graph.nodes.some((n) => n.op === "topK")).toBe(true);
      await expectParity(
        graph,
        initWeights(graph, 7),
        syntheticClip(graph, 7),
        mode,
        toleranceFor(mode),
      );
    });
  }
});

describe("Executable.detail", () => {
  it("names the gpu.js mode that ran", async () => {
    const { graph } = compileVision(smallSpec("reference", true));
    const { detail } = await runGpujs(graph, initWeights(graph, 1), syntheticClip(graph, 1), "cpu");
    expect(detail).toMatch(/^gpu\.js cpu mode \(JavaScript kernels/);
    expect(detail).toMatch(/\d+ generated kernels, \d+ launches per run/);
    expect(detail).not.toMatch(/fell back/);
  });
});
