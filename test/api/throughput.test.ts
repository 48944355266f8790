import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { stagedProfile } from "../../backends/onnx/profile.js";
import { referenceBackend } from "../../backends/reference/index.js";
import { loadBackend } from "../../backends/registry.js";
import { compileModel } from "../../src/api/compile.js";
import { retrievalSpecOfCase } from "../../src/api/conformance.js";
import { type RetrieveOptions, retrieve, syntheticVideo } from "../../src/api/retrieve.js";
import { runModel } from "../../src/api/run.js";
import { loadCase } from "../../src/conformance/case.js";
import { parseVocab, type Vocab } from "../../src/inputs/vocab.js";
import { f32Tensor, numElements } from "../../src/ir/tensor.js";
import type { VisionModelSpec } from "../../src/models/config.js";
import { MODELS } from "../../src/models/index.js";
import { initWeights, syntheticClip } from "../../src/models/init.js";
import type { RetrievalModelSpec } from "../../src/models/retrieval/index.js";
import { makeTestClips } from "../support/videos.js";

/**
 * Many clips at once (issue 11, item 3) must give what one clip at a time gives: `embed`
 * over real videos decoded ahead on a worker thread against one at a time, video batches
 * against batch 1, `run`'s batch B against B runs, and the onnx staged executable's
 * profile. No timing is asserted.
 */
const K1 = fileURLToPath(
  new URL("../../../shared/conformance/video-text/k1_retrieval_pixels.json", import.meta.url),
);

let tmp: string;
let paths: string[];
let spec: RetrievalModelSpec;
let vocab: Vocab;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sprig-throughput-"));
  paths = makeTestClips(tmp, 5, { step: 0.3, hue: 70 });
  const k1 = await loadCase(K1);
  spec = retrievalSpecOfCase(k1);
  vocab = parseVocab((k1.module!.fields as { vocab: string[] }).vocab.join("\n"), "k1 vocab");
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const captions = [
  { id: "c0", text: "a clip" },
  { id: "c1", text: "another clip" },
];

function embed(batch: number, extra: Partial<RetrieveOptions> = {}) {
  return retrieve({
    spec: { ...spec, vision: { ...spec.vision, batch }, texts: 2 },
    videos: paths.map((path, i) => ({ id: `v${i}`, path })),
    captions,
    vocab,
    embeddingsOnly: true,
    backend: "onnx",
    ...extra,
  });
}

/** Largest |a - b| over two lists of vectors of equal shapes. */
function maxDifference(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  expect(a.map((x) => x.length)).toEqual(b.map((x) => x.length));
  let worst = 0;
  a.forEach((row, i) => {
    row.forEach((value, j) => {
      worst = Math.max(worst, Math.abs(value - b[i]![j]!));
    });
  });
  return worst;
}

describe("embed over several real videos", () => {
  it("decoding ahead on a worker gives exactly the embeddings of one clip at a time", async () => {
    const serial = await embed(1, { prefetch: 0 });
    const ahead = await embed(1, { prefetch: 2 });
    expect(serial.preprocessing).toBe("the main thread (prefetch 0: one clip at a time)");
    expect(ahead.preprocessing).toBe("a worker thread, 2 clips ahead");
    expect(ahead.videoIds).toEqual(serial.videoIds);
    expect(ahead.videoFeats).toEqual(serial.videoFeats);
    expect(ahead.textFeats).toEqual(serial.textFeats);
    expect(ahead.notes).toEqual(serial.notes);
    for (const result of [serial, ahead]) {
      const t = result.timings;
      const steps = t.preprocessSteps;
      expect(t.preprocessMs).toBeCloseTo(steps.probeMs + steps.decodeMs + steps.resizeMs, 6);
      expect(t.clipsPerSecond).toBeCloseTo((1000 * paths.length) / t.videoWallMs, 6);
    }
  });

  it("video batches of 2 (the last one padded) give batch 1's embeddings within float rounding", async () => {
    const single = await embed(1);
    const batched = await embed(2);
    expect(batched.preprocessing).toBe("a worker thread, 2 clips ahead");
    // Features are unit vectors; different GEMM shapes only reorder float32 sums.
    expect(maxDifference(batched.videoFeats, single.videoFeats)).toBeLessThan(1e-5);
  });

  it("compiles and lowers each part once, however many videos and batches", async () => {
    const compile = vi.spyOn(referenceBackend, "compile");
    try {
      const result = await embed(2, { backend: "reference", workers: 1 });
      expect(result.videoFeats).toHaveLength(paths.length);
      // the video part and the text part; embeddings only, so no ITM part
      expect(compile).toHaveBeenCalledTimes(2);
    } finally {
      compile.mockRestore();
    }
  });

  it.each(["reference", "tfjs-wasm"])(
    "video encoders on 2 worker threads (%s) give exactly one encoder's embeddings",
    async (backend) => {
      const one = await embed(1, { backend, workers: 1 });
      const two = await embed(1, { backend, workers: 2 });
      expect(one.backendDetail).not.toMatch(/worker threads/);
      expect(two.backendDetail).toMatch(/, on 2 worker threads$/);
      // Decoding keeps both encoders fed: one batch ahead per encoder.
      expect(two.preprocessing).toBe("a worker thread, 2 clips ahead");
      expect(two.videoIds).toEqual(one.videoIds);
      expect(two.videoFeats).toEqual(one.videoFeats);
      expect(two.textFeats).toEqual(one.textFeats);
    },
  );

  it("leaves a caller's pixel values intact when workers encode them", async () => {
    const shape = [spec.vision.frames, 3, spec.vision.model.imageSize, spec.vision.model.imageSize];
    const videos = [0, 1, 2].map((i) => syntheticVideo(spec, `s${i}`));
    const pixelsOf = (v: (typeof videos)[number]) => ("pixels" in v ? v.pixels : null)!;
    const before = videos.map((v) => Float32Array.from(pixelsOf(v).data as Float32Array));
    const result = await retrieve({
      spec: { ...spec, vision: { ...spec.vision, batch: 1 }, texts: 2 },
      videos,
      captions,
      vocab,
      embeddingsOnly: true,
      backend: "reference",
      workers: 2,
    });
    expect(result.videoFeats).toHaveLength(3);
    videos.forEach((v, i) => {
      expect(pixelsOf(v).shape).toEqual(shape);
      expect(pixelsOf(v).data).toEqual(before[i]);
    });
  });

  it("refuses a prefetch depth that is not an integer >= 0", async () => {
    await expect(embed(1, { prefetch: -1 })).rejects.toThrow('config field "prefetch"');
  });
});

describe("run at batch B", () => {
  it("gives each clip's pooled output as B separate runs at batch 1", async () => {
    // The k1 vision encoder: 2 frames of 32 x 32, 3 layers, a token drop after layer 1.
    const small: VisionModelSpec = { ...spec.vision, batch: 1 };
    const B = 3;
    const one = compileModel(MODELS.vision, small);
    const weights = initWeights(one.graph, 0);
    const clips = [0, 1, 2].map((seed) => syntheticClip(one.graph, seed).pixel_values!);
    const batched = new Float32Array(B * numElements(clips[0]!.shape));
    clips.forEach((clip, i) => {
      batched.set(clip.data as Float32Array, i * clip.data.length);
    });
    const shape = [B, ...clips[0]!.shape.slice(1)];
    const many = await runModel(
      MODELS.vision,
      { ...small, batch: B },
      {
        backend: "onnx",
        weights,
        inputs: { pixel_values: f32Tensor(shape, batched) },
        reps: 1,
        warmup: 0,
      },
    );
    const pooled = many.outputs.pooler_output!;
    const width = pooled.shape[1]!;
    expect(pooled.shape).toEqual([B, width]);
    for (const [i, clip] of clips.entries()) {
      const alone = await runModel(MODELS.vision, small, {
        backend: "onnx",
        weights,
        inputs: { pixel_values: clip },
        reps: 1,
        warmup: 0,
      });
      const expected = alone.outputs.pooler_output!.data as Float32Array;
      const got = (pooled.data as Float32Array).subarray(i * width, (i + 1) * width);
      expect(maxDifference([got], [expected])).toBeLessThan(1e-4);
    }
  });
});

describe("the onnx staged executable's profile", () => {
  it("counts its segments, kernel calls, runs and crossing bytes; none for one model", async () => {
    const noDrops: VisionModelSpec = {
      ...spec.vision,
      batch: 1,
      sparsity: { ...spec.vision.sparsity, tokens: null },
    };
    const { graph } = compileModel(MODELS.vision, noDrops);
    const weights = initWeights(graph, 0);
    const inputs = syntheticClip(graph, 0);
    const staged = await (await loadBackend("onnx", { kernels: "on" })).compile(graph, weights);
    const single = await (await loadBackend("onnx", { kernels: "off" })).compile(graph, weights);
    try {
      const attention = graph.nodes.filter((n) => n.op === "blockSparseAttention").length;
      expect(attention).toBe(noDrops.model.numLayers);
      expect(stagedProfile(staged)?.runs).toBe(0);
      const expected = await single.run(inputs);
      const got = await staged.run(inputs);
      await staged.run(inputs);
      const profile = stagedProfile(staged)!;
      expect(profile.hostNodes).toBe(attention);
      expect(profile.segments).toBe(attention + 1);
      expect(profile.runs).toBe(2);
      expect(profile.segmentMs).toHaveLength(profile.segments);
      expect(profile.hostMs).toHaveLength(attention);
      // Out of onnxruntime cross, per attention node, its q, k, v and the residual stream it
      // is added back to (four [1, N, C] f32 tensors), and at the end the graph's outputs.
      const [, n, c] = graph.nodes.find((x) => x.op === "blockSparseAttention")!.outputs[0]!
        .shape as [number, number, number];
      const outputs = graph.outputs.map((o) => graph.nodes[o.ref.node]!.outputs[o.ref.output]!);
      expect(outputs.map((t) => t.shape)).toEqual([
        [1, n, c],
        [1, c],
      ]);
      expect(profile.crossingBytes).toBe(4 * (attention * 4 * n * c + n * c + c));
      expect(stagedProfile(single)).toBeNull();
      const pooled = (r: typeof got) => [r.pooler_output!.data as Float32Array];
      expect(maxDifference(pooled(got), pooled(expected))).toBeLessThan(1e-4);
    } finally {
      staged.dispose();
      single.dispose();
    }
  });
});
