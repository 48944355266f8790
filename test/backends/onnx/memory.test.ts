import { describe, expect, it } from "vitest";
import {
  ARENA_TENSOR_LIMIT,
  createOnnxBackend,
  largestIntermediateBytes,
  largeTensorNodes,
  usesMemoryArena,
} from "../../../backends/onnx/index.js";
import { attentionGraphs, attentionInputs } from "../../../src/api/attention-bench.js";
import { compileVision } from "../../../src/api/compile.js";
import { initWeights } from "../../../src/models/init.js";
import { visionPreset } from "../../../src/models/presets.js";

/**
 * Repeated runs do not grow memory: 100 forwards of one layer's block-sparse attention at
 * 8 frames (4.8 MB of outputs per run, so leaking them, or ORT's output buffers, would add
 * about 480 MB) leave the resident set within 64 MB of where 10 warm-up runs left it.
 */
describe("onnx memory", () => {
  const variants = [
    ["sprig's native attention kernel", { hostAttention: true }],
    ["onnxruntime attention", { hostAttention: false }],
  ] as const;
  it.each(variants)("100 runs do not grow the resident set (%s)", async (_name, options) => {
    const { sparse } = attentionGraphs(8, { tokenIndex: "input" });
    const executable = await createOnnxBackend(options).compile(sparse, initWeights(sparse, 0));
    const inputs = attentionInputs(sparse, 8);
    try {
      let checksum = 0;
      for (let i = 0; i < 10; i++) checksum += (await executable.run(inputs)).context!.data[0]!;
      const before = process.memoryUsage().rss;
      const samples: number[] = [];
      for (let i = 0; i < 100; i++) {
        const outputs = await executable.run(inputs);
        checksum += outputs.context!.data[0]!;
        if (i % 10 === 9) samples.push(process.memoryUsage().rss - before);
      }
      expect(Number.isFinite(checksum)).toBe(true);
      const growthMb = Math.max(...samples) / 2 ** 20;
      expect(
        growthMb,
        `RSS growth per 10 runs: ${samples.map((s) => (s / 2 ** 20).toFixed(1))}`,
      ).toBeLessThan(64);
    } finally {
      executable.dispose();
    }
  });
});

describe("onnx memory arena", () => {
  const largest = (frames: number, variant: "svitt" | "dense") =>
    largestIntermediateBytes(compileVision(visionPreset(frames, variant)).graph);

  it("is used while every tensor stays within 128 MiB, and not beyond", () => {
    // Dense 8 frames: logits 12 x 1569 x 1569 floats = 118 MB (112.7 MiB).
    expect(largest(8, "dense")).toBe(4 * 12 * 1569 * 1569);
    expect(largest(8, "dense")).toBeLessThanOrEqual(ARENA_TENSOR_LIMIT);
    expect(largest(8, "svitt")).toBeLessThanOrEqual(ARENA_TENSOR_LIMIT);
    expect(largest(32, "svitt")).toBeLessThanOrEqual(ARENA_TENSOR_LIMIT);
    // Dense 16 frames: 12 x 3137 x 3137 logits; SViTT 64 frames: the [12545, 3072] FFN input.
    expect(largest(16, "dense")).toBe(4 * 12 * 3137 * 3137);
    expect(largest(64, "svitt")).toBe(4 * 12545 * 3072);
    expect(largest(16, "dense")).toBeGreaterThan(ARENA_TENSOR_LIMIT);
    expect(largest(64, "svitt")).toBeGreaterThan(ARENA_TENSOR_LIMIT);
  });

  it("is turned off by the auto policy when several nodes hold large tensors, not for one", () => {
    const graph = (frames: number, variant: "svitt" | "dense") =>
      compileVision(visionPreset(frames, variant)).graph;
    // 12 dense layers with 472 MB logits each; SViTT 64 frames: the block logits
    // ([12, 12544, 225]) of the four layers up to the first drop, and fc1 and GELU
    // ([12545, 3072]) of the three before it (the drop layer's FFN runs on the 1 + 6272 kept
    // tokens: sink-token-selection).
    expect(largeTensorNodes(graph(16, "dense"))).toBeGreaterThanOrEqual(12);
    expect(largeTensorNodes(graph(64, "svitt"))).toBe(10);
    expect(usesMemoryArena(graph(16, "dense"))).toBe(false);
    expect(usesMemoryArena(graph(64, "svitt"))).toBe(false);
    expect(usesMemoryArena(graph(8, "svitt"))).toBe(true);
    // One dense attention layer at 16 frames: a single large tensor, reused run after run.
    const { dense } = attentionGraphs(16, { tokenIndex: "input" });
    expect(largeTensorNodes(dense)).toBe(1);
    expect(usesMemoryArena(dense)).toBe(true);
  });
});
