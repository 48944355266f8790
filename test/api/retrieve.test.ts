import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { referenceBackend } from "../../backends/reference/index.js";
import { randomBlocksOf, retrievalSpecOfCase } from "../../src/api/conformance.js";
import { retrieve, type VideoSource } from "../../src/api/retrieve.js";
import { loadCase } from "../../src/conformance/case.js";
import { compareTensors } from "../../src/conformance/compare.js";
import { parseVocab } from "../../src/inputs/vocab.js";
import { f32Tensor, type HostTensor, numElements } from "../../src/ir/tensor.js";
import { UNSCORED } from "../../src/models/retrieval/ranking.js";
import type { WeightFile } from "../../src/runtime/weight-file.js";

/**
 * `retrieve` orchestrates the retrieval model as three compiled parts (video encoder, text
 * encoder, ITM on the reranked pairs). On the k1 case (the authors' evaluation() on 3
 * videos x 4 captions) it must give the same ITC similarities and ITM scores as the
 * reference, with captions tokenized from the sidecar's texts and vocab.
 */
const K1 = fileURLToPath(
  new URL("../../../shared/conformance/video-text/k1_retrieval_pixels.json", import.meta.url),
);

async function k1Inputs() {
  const testCase = await loadCase(K1);
  const fields = testCase.module!.fields as { vocab: string[]; texts: string[] };
  const pixels = testCase.tensors.get("input.pixel_values")!;
  const perVideo = numElements(pixels.shape.slice(1));
  const videos: VideoSource[] = Array.from({ length: pixels.shape[0]! }, (_, v) => ({
    id: `v${v}`,
    pixels: f32Tensor(
      pixels.shape.slice(1),
      (pixels.data as Float32Array).slice(v * perVideo, (v + 1) * perVideo),
    ),
  }));
  const weights = new Map<string, HostTensor>();
  for (const [name, tensor] of testCase.tensors) {
    if (testCase.specs.get(name)?.role === "weight") weights.set(name, tensor);
  }
  const weightFile: WeightFile = {
    path: K1,
    format: "safetensors",
    tensors: weights,
    metadata: {},
    sourceFrames: null,
  };
  const spec = retrievalSpecOfCase(testCase);
  return {
    testCase,
    videos,
    captions: fields.texts.map((text, i) => ({ id: `c${i}`, text })),
    vocab: parseVocab(fields.vocab.join("\n"), "k1 vocab"),
    weightFile,
    spec: { ...spec, vision: { ...spec.vision, batch: 2 }, texts: 3 },
    randomBlocks: randomBlocksOf(testCase),
  };
}

function asTensor(rows: number, cols: number, data: ArrayLike<number>): HostTensor {
  return f32Tensor([rows, cols], Float32Array.from(data));
}

describe("retrieve on the k1 case", () => {
  it("matches the reference's ITC similarities and ITM scores both ways (k covers every pair)", async () => {
    const k1 = await k1Inputs();
    const result = await retrieve({
      spec: k1.spec,
      videos: k1.videos,
      captions: k1.captions,
      vocab: k1.vocab,
      weightFile: k1.weightFile,
      backend: referenceBackend.name,
      k: 128,
      pairsPerBatch: 5,
      compile: { randomBlocks: k1.randomBlocks },
    });
    const tol = (name: string) => {
      const t = k1.testCase.specs.get(name)!.tolerance!;
      return "exact" in t ? ("exact" as const) : t;
    };
    const check = (name: string, got: HostTensor) => {
      const want = k1.testCase.tensors.get(name)!;
      const result = compareTensors(name, got, want, tol(name));
      expect(result.passed, result.detail).toBe(true);
    };
    check("expected.sim_i2t", asTensor(3, 4, result.sim.data));
    check("expected.itm_scores_i2t", asTensor(3, 4, result.itmI2t.data));
    check("expected.itm_scores_t2i", asTensor(4, 3, result.itmT2i.data));
    // every pair scored exactly once although both directions asked for all of them
    expect(result.pairsScored).toBe(12);
    expect(result.rankingI2t).toHaveLength(3);
    expect(result.rankingT2i).toHaveLength(4);
  });

  it("with k below the candidates, scores only each query's top k and leaves -100 elsewhere", async () => {
    const k1 = await k1Inputs();
    const run = (k: number) =>
      retrieve({
        spec: k1.spec,
        videos: k1.videos,
        captions: k1.captions,
        vocab: k1.vocab,
        weightFile: k1.weightFile,
        backend: referenceBackend.name,
        k,
        compile: { randomBlocks: k1.randomBlocks },
      });
    const [all, two] = await Promise.all([run(128), run(2)]);
    for (let v = 0; v < 3; v++) {
      const row = Array.from(all.sim.data.subarray(v * 4, v * 4 + 4));
      const top = row
        .map((s, c) => [s, c] as const)
        .sort((a, b) => b[0] - a[0])
        .slice(0, 2)
        .map(([, c]) => c);
      for (let c = 0; c < 4; c++) {
        const got = two.itmI2t.data[v * 4 + c]!;
        if (top.includes(c)) expect(got).toBeCloseTo(all.itmI2t.data[v * 4 + c]!, 6);
        else expect(got).toBe(UNSCORED);
      }
    }
    expect(two.pairsScored).toBeLessThan(12);
  });

  it("refuses ground truth naming an unknown video", async () => {
    const k1 = await k1Inputs();
    await expect(
      retrieve({
        spec: k1.spec,
        videos: k1.videos,
        captions: k1.captions,
        vocab: k1.vocab,
        backend: referenceBackend.name,
        groundTruth: [["nope", "c0"]],
        groundTruthSource: "gt.json",
      }),
    ).rejects.toThrow(/gt\.json names unknown video "nope"/);
  });
});
