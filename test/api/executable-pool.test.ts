import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { loadBackend } from "../../backends/registry.js";
import { compileModel } from "../../src/api/compile.js";
import { openExecutablePool, workersFor } from "../../src/api/executable-pool.js";
import { planRetrieval } from "../../src/api/retrieve.js";
import { estimateMemory } from "../../src/memory.js";
import { BackendError, ConfigError, InputError } from "../../src/ir/errors.js";
import { f32Tensor } from "../../src/ir/tensor.js";
import type { VisionModelSpec } from "../../src/models/config.js";
import { MODELS } from "../../src/models/index.js";
import { initWeights, syntheticClip } from "../../src/models/init.js";

/** A 2-layer vision encoder of 2 frames of 64 x 64: small enough for worker start-ups. */
const SPEC: VisionModelSpec = (() => {
  const preset = MODELS.vision.preset({ frames: 2, variant: "svitt" });
  return MODELS.vision.check({
    ...preset,
    model: { ...preset.model, imageSize: 64, numLayers: 2, hiddenSize: 64, numHeads: 2 },
    sparsity: {
      ...preset.sparsity,
      attention: { ...preset.sparsity.attention!, blockSize: 4 },
      tokens: null,
    },
  });
})();

describe("an executable pool on worker threads", () => {
  it("runs inputs concurrently, each exactly as one executable on this thread", async () => {
    const { graph } = compileModel(MODELS.vision, SPEC);
    const weights = initWeights(graph, 0);
    const backend = await loadBackend("reference");
    const local = await backend.compile(graph, weights);
    const pool = await openExecutablePool(
      { backend: "reference", choices: {}, graph, weights, compile: {} },
      2,
    );
    try {
      expect(pool.size).toBe(2);
      expect(pool.detail).toMatch(/, on 2 worker threads$/);
      const clips = [0, 1, 2, 3].map((seed) => syntheticClip(graph, seed));
      const copies = clips.map((c) => Float32Array.from(c.pixel_values!.data as Float32Array));
      // Copied (no transfer) for the first two, transferred for the others.
      const outputs = await Promise.all(clips.map((c, i) => pool.run(c, i >= 2)));
      for (const [i, out] of outputs.entries()) {
        const expected = await local.run({
          pixel_values: f32Tensor(clips[i]!.pixel_values!.shape, copies[i]!),
        });
        expect(Object.keys(out).sort()).toEqual(Object.keys(expected).sort());
        for (const name of Object.keys(expected)) {
          expect(out[name]!.shape).toEqual(expected[name]!.shape);
          expect(out[name]!.data).toEqual(expected[name]!.data);
        }
      }
      expect(clips[0]!.pixel_values!.data).toEqual(copies[0]);
      expect(clips[2]!.pixel_values!.data.length).toBe(0); // transferred: detached
    } finally {
      local.dispose();
      await pool.close();
    }
  });

  it("reports a run's bad input as the executable would, and keeps running", async () => {
    const { graph } = compileModel(MODELS.vision, SPEC);
    const weights = initWeights(graph, 0);
    const pool = await openExecutablePool(
      { backend: "reference", choices: {}, graph, weights, compile: {} },
      2,
    );
    try {
      const bad = pool.run({ pixel_values: f32Tensor([1, 2], new Float32Array(2)) });
      await expect(bad).rejects.toBeInstanceOf(InputError);
      const good = await pool.run(syntheticClip(graph, 0));
      expect(Object.keys(good).length).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });

  it("fails to open with one error when the backend cannot lower the graph", async () => {
    const { graph } = compileModel(MODELS.vision, SPEC);
    const weights = initWeights(graph, 0);
    await expect(
      openExecutablePool({ backend: "no-such", choices: {}, graph, weights, compile: {} }, 2),
    ).rejects.toThrow(BackendError);
    const missing = new Map([...weights].slice(1));
    await expect(
      openExecutablePool(
        { backend: "reference", choices: {}, graph, weights: missing, compile: {} },
        2,
      ),
    ).rejects.toThrow(/weight/i);
  });
});

describe("workersFor", () => {
  it("gives one-core backends every core (never more than the runs), others one", async () => {
    const cores = availableParallelism();
    expect(workersFor(await loadBackend("tfjs-wasm"), 100)).toBe(cores);
    expect(workersFor(await loadBackend("reference"), 1)).toBe(1);
    expect(workersFor(await loadBackend("onnx"), 100)).toBe(1);
    expect(workersFor(await loadBackend("gpujs"), 100)).toBe(1);
    expect(workersFor(await loadBackend("onnx"), 100, 3)).toBe(3);
    expect(() => workersFor(referenceLike(), 4, 0)).toThrow(ConfigError);
    expect(() => workersFor(referenceLike(), 4, 1.5)).toThrow('config field "workers"');
  });
});

function referenceLike() {
  return {
    name: "x",
    cores: "one" as const,
    description: "",
    availability: async () => ({ ok: true as const, detail: "" }),
    compile: async () => {
      throw new Error("unused");
    },
  };
}

describe("the memory check of several video encoders", () => {
  it("counts each encoder beyond the first at the video part's estimate", () => {
    const spec = MODELS.retrieval.preset({ frames: 2, variant: "svitt", layers: 4 });
    const one = planRetrieval(spec, { pairsPerBatch: 2, embeddingsOnly: true });
    const video = estimateMemory(one.video.graph).totalBytes;
    const budget = { limitBytes: one.memory.totalBytes + video / 2, source: "a test budget" };
    expect(() =>
      planRetrieval(spec, { pairsPerBatch: 2, embeddingsOnly: true, budget, videoEncoders: 1 }),
    ).not.toThrow();
    expect(() =>
      planRetrieval(spec, { pairsPerBatch: 2, embeddingsOnly: true, budget, videoEncoders: 2 }),
    ).toThrow(/1 more video encoder on worker threads/);
  });
});
