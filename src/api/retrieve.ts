import type { Executable } from "../../backends/backend.js";
import type { KernelChoice } from "../../backends/registry.js";
import type { CostReport } from "../cost.js";
import type { Caption } from "../inputs/captions.js";
import { groundTruthIndex } from "../inputs/captions.js";
import { encode } from "../inputs/tokenizer.js";
import { preprocessVideo } from "../inputs/video.js";
import type { Vocab } from "../inputs/vocab.js";
import { ConfigError, InputError } from "../ir/errors.js";
import type { Graph } from "../ir/graph.js";
import { f32Tensor, type HostTensor, i32Tensor, numElements } from "../ir/tensor.js";
import {
  checkGraphSizes,
  checkMemoryBudget,
  combineEstimates,
  type ExtraMemory,
  estimateMemory,
  type MemoryBudget,
  type MemoryEstimate,
} from "../memory.js";
import { initWeights } from "../models/init.js";
import { type RetrievalModelSpec, retrievalParts } from "../models/retrieval/index.js";
import {
  matrix,
  type RecallResult,
  rankAll,
  recallAtK,
  rerankPairs,
  type ScoreMatrix,
  transpose,
  UNSCORED,
} from "../models/retrieval/ranking.js";
import { Rng } from "../patterns/random.js";
import {
  bindWeightFile,
  combineWeightReports,
  type WeightFile,
  type WeightLoadReport,
} from "../runtime/weight-file.js";
import { type CompiledGraph, type CompileOptions, compileProgram } from "./compile.js";
import { pickBackend } from "./run.js";

/**
 * Retrieval, the whole model's main job (the authors' evaluation() and itm_eval): encode
 * every video once and every caption once, score every pair with ITC, rerank each query's
 * top k with ITM (the fusion encoder runs only on those pairs, each pair once however many
 * queries asked for it), rank both ways and, with ground truth, report recall@1/5/10.
 *
 * The model is compiled as three parts (retrievalParts): the video encoder (in batches of
 * spec.vision.batch clips), the text encoder (batches of spec.texts captions) and the ITM
 * head (batches of `pairsPerBatch` pairs); a short last batch is padded by repeating its
 * last item, whose outputs are dropped.
 */
export type VideoSource =
  | { readonly id: string; readonly path: string }
  | { readonly id: string; readonly pixels: HostTensor };

export interface RetrieveOptions {
  readonly spec: RetrievalModelSpec;
  readonly videos: readonly VideoSource[];
  readonly captions: readonly Caption[];
  readonly vocab: Vocab;
  /** Candidates reranked with ITM per query (k_test; default 128). */
  readonly k?: number;
  /** ITM pairs per batch (default 8). */
  readonly pairsPerBatch?: number;
  /** Ground truth (video id, caption id) pairs; recall is computed when given. */
  readonly groundTruth?: readonly (readonly [string, string])[];
  readonly groundTruthSource?: string;
  readonly backend?: string;
  readonly threads?: number;
  readonly kernels?: KernelChoice;
  readonly weightFile?: WeightFile;
  /** Seed of synthetic weights when there is no weight file (default 0). */
  readonly seed?: number;
  readonly compile?: CompileOptions;
  readonly onProgress?: (message: string) => void;
  /** Only encode (sprig embed): no ITC matrix ranking, no ITM. */
  readonly embeddingsOnly?: boolean;
  /** Refuse what the memory estimate says exceeds this (see planRetrieval); none: size rules only. */
  readonly budget?: MemoryBudget;
  /** The parts compiled already by planRetrieval for this spec, pairsPerBatch and embeddingsOnly. */
  readonly plan?: RetrievalPlan;
}

/** The three parts compiled and checked, with their memory estimate held together. */
export interface RetrievalPlan {
  readonly video: CompiledGraph;
  readonly text: CompiledGraph;
  readonly itm: CompiledGraph | null;
  readonly memory: MemoryEstimate;
}

/**
 * Compiles the retrieval parts and checks, before any weights or inputs exist, that they
 * can run together: the size rules on each part's dense graph, then on the compiled graph
 * with attention workspace, then the memory estimate of the parts held at once (every
 * part's weights, one part's inputs and activations at a time: combineEstimates), with
 * `extra` (synthetic clips, the weights file as read) against `budget`.
 */
export function planRetrieval(
  spec: RetrievalModelSpec,
  options: {
    readonly pairsPerBatch: number;
    readonly embeddingsOnly: boolean;
    readonly budget?: MemoryBudget;
    readonly extra?: readonly ExtraMemory[];
    readonly compile?: CompileOptions;
  },
): RetrievalPlan {
  const programs = retrievalParts(spec, options.pairsPerBatch);
  const what = `the retrieval model (${spec.vision.frames} frames)`;
  const compiled = (program: (typeof programs)["video"], part: string) => {
    checkGraphSizes(program.graph, `${what}, ${part} part`, { workspace: false });
    const result = compileProgram(program, options.compile);
    checkGraphSizes(result.graph, `${what}, ${part} part`, { workspace: true });
    return result;
  };
  const video = compiled(programs.video, "video");
  const text = compiled(programs.text, "text");
  const itm = options.embeddingsOnly ? null : compiled(programs.itm, "ITM");
  const memory = combineEstimates(
    [video, text, ...(itm === null ? [] : [itm])].map((part) => estimateMemory(part.graph)),
  );
  if (options.budget !== undefined) {
    checkMemoryBudget(memory, options.budget, what, options.extra ?? []);
  }
  return { video, text, itm, memory };
}

export interface RetrieveTimings {
  readonly compileMs: number;
  readonly lowerMs: number;
  /** Decoding and preprocessing the videos. */
  readonly preprocessMs: number;
  readonly videoMs: number;
  readonly textMs: number;
  readonly itmMs: number;
  readonly totalMs: number;
  readonly videoMsPerClip: number;
  readonly textMsPerCaption: number;
  readonly itmMsPerPair: number;
}

export interface RetrieveResult {
  readonly backend: string;
  readonly backendDetail: string;
  readonly videoIds: readonly string[];
  readonly captions: readonly Caption[];
  readonly k: number;
  /** ITC similarities [videos, captions] (evaluation's i2t_emb). */
  readonly sim: ScoreMatrix;
  /** ITM scores of the reranked pairs, UNSCORED elsewhere: [videos, captions] and [captions, videos]. */
  readonly itmI2t: ScoreMatrix;
  readonly itmT2i: ScoreMatrix;
  /** Caption indices per video and video indices per caption, best first (by ITM). */
  readonly rankingI2t: readonly (readonly number[])[];
  readonly rankingT2i: readonly (readonly number[])[];
  readonly pairsScored: number;
  readonly recall: { readonly itm: RecallResult; readonly itc: RecallResult } | null;
  readonly timings: RetrieveTimings;
  /** MACs of each part: one clip, one caption, one pair. */
  readonly macs: { readonly video: number; readonly text: number; readonly pair: number };
  readonly weightReport: WeightLoadReport | null;
  /** Per video: notes from preprocessing (padding of short videos). */
  readonly notes: readonly string[];
  /** The normalised ITC embeddings [E] of each video and caption. */
  readonly videoFeats: readonly Float32Array[];
  readonly textFeats: readonly Float32Array[];
}

interface Part {
  readonly graph: Graph;
  readonly cost: CostReport;
  readonly executable: Executable;
}

/** One batch item of an [N, ...] tensor, as its own [1, ...] slice (a copy). */
function item(tensor: HostTensor, index: number): Float32Array {
  const size = numElements(tensor.shape.slice(1));
  return (tensor.data as Float32Array).slice(index * size, (index + 1) * size);
}

/** Stacks per-item rows into [n, ...shape]; rows past the end repeat the last (padding). */
function stack(rows: readonly Float32Array[], shape: readonly number[], n: number): HostTensor {
  const size = numElements(shape);
  const data = new Float32Array(n * size);
  for (let i = 0; i < n; i++) data.set(rows[Math.min(i, rows.length - 1)]!, i * size);
  return f32Tensor([n, ...shape], data);
}

function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A seeded synthetic clip: N(0, 1) pixel values [T, 3, S, S], its own stream per id. */
export function syntheticVideo(spec: RetrievalModelSpec, id: string, seed = 0): VideoSource {
  const { model, frames } = spec.vision;
  const shape = [frames, model.channels, model.imageSize, model.imageSize];
  const data = new Float32Array(numElements(shape));
  Rng.stream(seed, `video.${id}`).fillNormal(data);
  return { id, pixels: f32Tensor(shape, data) };
}

export async function retrieve(options: RetrieveOptions): Promise<RetrieveResult> {
  const start = performance.now();
  const { spec, videos, captions, vocab } = options;
  const k = options.k ?? 128;
  const pairsPerBatch = options.pairsPerBatch ?? 8;
  if (videos.length === 0) throw new ConfigError("videos", "no videos to retrieve from");
  if (captions.length === 0) throw new ConfigError("captions", "no captions to retrieve with");
  if (!(Number.isInteger(k) && k >= 1))
    throw new ConfigError("k", `must be an integer >= 1, got ${k}`);
  const ids = videos.map((v) => v.id);
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
  if (duplicate !== undefined)
    throw new ConfigError("videos", `video id "${duplicate}" is used twice`);
  const truth =
    options.groundTruth === undefined
      ? null
      : groundTruthIndex(
          options.groundTruth,
          ids,
          captions.map((c) => c.id),
          options.groundTruthSource ?? "ground truth",
        );
  const say = options.onProgress ?? (() => undefined);

  // ---- compile and lower the three parts ----
  let t = performance.now();
  const compiled =
    options.plan ??
    planRetrieval(spec, {
      pairsPerBatch,
      embeddingsOnly: options.embeddingsOnly === true,
      ...(options.budget !== undefined ? { budget: options.budget } : {}),
      ...(options.compile !== undefined ? { compile: options.compile } : {}),
    });
  const compileMs = performance.now() - t;
  t = performance.now();
  const backend = await pickBackend(
    options.backend,
    options.kernels === undefined ? {} : { kernels: options.kernels },
  );
  const weightReports: WeightLoadReport[] = [];
  const lower = async (graph: Graph, cost: CostReport): Promise<Part> => {
    let weights: ReadonlyMap<string, HostTensor>;
    if (options.weightFile === undefined) {
      weights = initWeights(graph, options.seed ?? 0);
    } else {
      const bound = bindWeightFile(graph, options.weightFile, "");
      weights = bound.weights;
      weightReports.push(bound.report);
    }
    const executable = await backend.compile(
      graph,
      weights,
      options.threads === undefined ? {} : { threads: options.threads },
    );
    return { graph, cost, executable };
  };
  const parts: Part[] = [];
  try {
    const video = await lower(compiled.video.graph, compiled.video.cost);
    parts.push(video);
    const text = await lower(compiled.text.graph, compiled.text.cost);
    parts.push(text);
    const itm = compiled.itm === null ? null : await lower(compiled.itm.graph, compiled.itm.cost);
    if (itm !== null) parts.push(itm);
    const lowerMs = performance.now() - t;

    // ---- videos: each encoded once ----
    const vb = spec.vision.batch;
    const { model, frames } = spec.vision;
    const pixelShape = [frames, model.channels, model.imageSize, model.imageSize];
    const videoEmbeds: Float32Array[] = [];
    const videoFeats: Float32Array[] = [];
    const notes: string[] = [];
    let preprocessMs = 0;
    let videoMs = 0;
    let embedShape: readonly number[] = [];
    for (const batch of batches(videos, vb)) {
      t = performance.now();
      const pixels: Float32Array[] = [];
      for (const source of batch) {
        if ("path" in source) {
          const pre = await preprocessVideo(source.path, { frames, imageSize: model.imageSize });
          for (const note of pre.notes) notes.push(`${source.id}: ${note}`);
          pixels.push(pre.pixelValues.data);
        } else {
          if (numElements(source.pixels.shape) !== numElements(pixelShape)) {
            throw new InputError(
              `video "${source.id}" has pixel values of shape [${source.pixels.shape.join(",")}], the model needs [${pixelShape.join(",")}]`,
            );
          }
          pixels.push(source.pixels.data as Float32Array);
        }
      }
      preprocessMs += performance.now() - t;
      t = performance.now();
      const out = await video.executable.run({ pixel_values: stack(pixels, pixelShape, vb) });
      videoMs += performance.now() - t;
      const embeds = out.video_embeds!;
      embedShape = embeds.shape.slice(1);
      for (let i = 0; i < batch.length; i++) {
        videoEmbeds.push(item(embeds, i));
        videoFeats.push(item(out.video_feat!, i));
      }
      say(`encoded ${videoEmbeds.length}/${videos.length} videos`);
    }

    // ---- captions: each encoded once ----
    const tb = spec.texts;
    const L = spec.textLength;
    const encoded = encode(
      vocab,
      captions.map((c) => c.text),
      L,
    );
    const textEmbeds: Float32Array[] = [];
    const textFeats: Float32Array[] = [];
    const textMasks: Int32Array[] = [];
    let textMs = 0;
    let textShape: readonly number[] = [];
    for (let first = 0; first < captions.length; first += tb) {
      const n = Math.min(tb, captions.length - first);
      const ids32 = new Int32Array(tb * L);
      const mask = new Int32Array(tb * L);
      for (let i = 0; i < tb; i++) {
        const row = first + Math.min(i, n - 1);
        ids32.set(encoded.inputIds.data.subarray(row * L, (row + 1) * L), i * L);
        mask.set(encoded.attentionMask.data.subarray(row * L, (row + 1) * L), i * L);
      }
      t = performance.now();
      const out = await text.executable.run({
        input_ids: i32Tensor([tb, L], ids32),
        attention_mask: i32Tensor([tb, L], mask),
      });
      textMs += performance.now() - t;
      textShape = out.text_embeds!.shape.slice(1);
      for (let i = 0; i < n; i++) {
        textEmbeds.push(item(out.text_embeds!, i));
        textFeats.push(item(out.text_feat!, i));
        textMasks.push(mask.slice(i * L, (i + 1) * L));
      }
    }
    say(`encoded ${captions.length} captions`);

    // ---- ITC: every pair ----
    const nv = videos.length;
    const nt = captions.length;
    const sim = matrix(nv, nt);
    for (let v = 0; v < nv; v++) {
      for (let c = 0; c < nt; c++) {
        const a = videoFeats[v]!;
        const b = textFeats[c]!;
        let dot = 0;
        for (let d = 0; d < a.length; d++) dot += a[d]! * b[d]!;
        (sim.data as Float64Array)[v * nt + c] = Math.fround(dot);
      }
    }

    // ---- ITM on each query's top k, every pair once ----
    const i2tPairs = itm === null ? [] : rerankPairs(sim, k);
    const t2iPairs = itm === null ? [] : rerankPairs(transpose(sim), k);
    const pairIndex = new Map<number, number>();
    const pairs: [number, number][] = [];
    const want = (v: number, c: number) => {
      const key = v * nt + c;
      if (!pairIndex.has(key)) {
        pairIndex.set(key, pairs.length);
        pairs.push([v, c]);
      }
    };
    i2tPairs.forEach((cs, v) => {
      for (const c of cs) want(v, c);
    });
    t2iPairs.forEach((vs, c) => {
      for (const v of vs) want(v, c);
    });
    const scores = new Float64Array(pairs.length);
    let itmMs = 0;
    for (let first = 0; first < pairs.length; first += pairsPerBatch) {
      const chunk = pairs.slice(first, first + pairsPerBatch);
      const inputs = {
        video_embeds: stack(
          chunk.map(([v]) => videoEmbeds[v]!),
          embedShape,
          pairsPerBatch,
        ),
        text_embeds: stack(
          chunk.map(([, c]) => textEmbeds[c]!),
          textShape,
          pairsPerBatch,
        ),
        attention_mask: (() => {
          const data = new Int32Array(pairsPerBatch * L);
          for (let i = 0; i < pairsPerBatch; i++) {
            data.set(textMasks[chunk[Math.min(i, chunk.length - 1)]![1]]!, i * L);
          }
          return i32Tensor([pairsPerBatch, L], data);
        })(),
      };
      t = performance.now();
      const out = await itm!.executable.run(inputs);
      itmMs += performance.now() - t;
      for (let i = 0; i < chunk.length; i++) scores[first + i] = out.itm_score!.data[i]!;
      say(`scored ${Math.min(first + pairsPerBatch, pairs.length)}/${pairs.length} pairs with ITM`);
    }
    const itmI2t = matrix(nv, nt, UNSCORED);
    const itmT2i = matrix(nt, nv, UNSCORED);
    i2tPairs.forEach((cs, v) => {
      for (const c of cs)
        (itmI2t.data as Float64Array)[v * nt + c] = scores[pairIndex.get(v * nt + c)!]!;
    });
    t2iPairs.forEach((vs, c) => {
      for (const v of vs)
        (itmT2i.data as Float64Array)[c * nv + v] = scores[pairIndex.get(v * nt + c)!]!;
    });

    const recall =
      truth === null
        ? null
        : {
            itm: recallAtK(itmI2t, itmT2i, truth.videoToCaptions, truth.captionToVideos),
            itc: recallAtK(sim, transpose(sim), truth.videoToCaptions, truth.captionToVideos),
          };
    const totalMs = performance.now() - start;
    return {
      backend: backend.name,
      backendDetail: video.executable.detail,
      videoIds: ids,
      captions,
      k,
      sim,
      itmI2t,
      itmT2i,
      rankingI2t: rankAll(itmI2t),
      rankingT2i: rankAll(itmT2i),
      pairsScored: pairs.length,
      recall,
      timings: {
        compileMs,
        lowerMs,
        preprocessMs,
        videoMs,
        textMs,
        itmMs,
        totalMs,
        videoMsPerClip: videoMs / nv,
        textMsPerCaption: textMs / nt,
        itmMsPerPair: pairs.length === 0 ? 0 : itmMs / pairs.length,
      },
      macs: {
        video: compiled.video.cost.totals.macs / vb,
        text: compiled.text.cost.totals.macs / tb,
        pair: compiled.itm === null ? 0 : compiled.itm.cost.totals.macs / pairsPerBatch,
      },
      weightReport:
        options.weightFile === undefined
          ? null
          : combineWeightReports(options.weightFile, weightReports),
      notes,
      videoFeats,
      textFeats,
    };
  } finally {
    for (const part of parts) part.executable.dispose();
  }
}
