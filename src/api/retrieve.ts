import type { Executable } from "../../backends/backend.js";
import type { KernelChoice } from "../../backends/registry.js";
import type { CostReport } from "../cost.js";
import type { Caption } from "../inputs/captions.js";
import { groundTruthIndex } from "../inputs/captions.js";
import { encode } from "../inputs/tokenizer.js";
import { Prefetch } from "../inputs/prefetch.js";
import type { PreprocessTimings } from "../inputs/video.js";
import {
  mainThreadPreprocessor,
  openVideoPreprocessor,
  type VideoPreprocessor,
} from "../inputs/video-pool.js";
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
import type { WeightStore } from "../runtime/weights.js";
import {
  bindWeightFile,
  combineWeightReports,
  type WeightFile,
  type WeightLoadReport,
} from "../runtime/weight-file.js";
import { type CompiledGraph, type CompileOptions, compileProgram } from "./compile.js";
import { type ExecutablePool, openExecutablePool, poolOf, workersFor } from "./executable-pool.js";
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
  /**
   * Video files decoded ahead of the video encoder, on a worker thread while the encoder
   * runs (default: spec.vision.batch times workers, one batch ahead per encoder; it starts while the parts are
   * lowered). 0: each clip is decoded on the main thread when the encoder needs it, one
   * after the other. Results are identical either way.
   */
  readonly prefetch?: number;
  /**
   * Video encoders run at once, each on its own worker thread with its own copy of the
   * weights (executable-pool.ts). Default: every core on a backend whose run keeps one core
   * busy (tfjs-wasm, tfjs-cpu, reference; never more than there are video batches), else 1
   * (onnx already runs on every core), which runs on this thread.
   */
  readonly workers?: number;
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
    /** Video encoders held at once (RetrieveOptions.workers); default 1. */
    readonly videoEncoders?: number;
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
  const more = (options.videoEncoders ?? 1) - 1;
  const encoders: ExtraMemory[] =
    more > 0
      ? [
          {
            what: `${more} more video encoder${more === 1 ? "" : "s"} on worker threads`,
            bytes: more * estimateMemory(video.graph).totalBytes,
          },
        ]
      : [];
  if (options.budget !== undefined) {
    checkMemoryBudget(memory, options.budget, what, [...(options.extra ?? []), ...encoders]);
  }
  return { video, text, itm, memory };
}

export interface RetrieveTimings {
  readonly compileMs: number;
  readonly lowerMs: number;
  /**
   * Decoding and preprocessing the videos, summed over clips (preprocessSteps), wherever it
   * ran: with prefetch it overlaps the encoder and is not part of the wall time.
   */
  readonly preprocessMs: number;
  /** preprocessMs by step, summed over clips. */
  readonly preprocessSteps: PreprocessTimings;
  /** Time a free video encoder waited for decoded clips (0: decoding kept up). */
  readonly preprocessWaitMs: number;
  /** Host copies around the video encoder: clips stacked into batches, outputs split per clip. */
  readonly videoCopyMs: number;
  /** The video encoder's forward passes (executable.run), summed over its workers. */
  readonly videoMs: number;
  /** The whole video phase, first clip asked for to last embedding (wall clock). */
  readonly videoWallMs: number;
  /** Videos per second over the video phase: videos / videoWallMs. */
  readonly clipsPerSecond: number;
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
  /** Where the video files were decoded, and how far ahead: for the timings. */
  readonly preprocessing: string;
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

/** A seeded synthetic clip: N(0, 1) pixel values [T, 3, S, S], its own stream per id. */
export function syntheticVideo(spec: RetrievalModelSpec, id: string, seed = 0): VideoSource {
  const { model, frames } = spec.vision;
  const shape = [frames, model.channels, model.imageSize, model.imageSize];
  const data = new Float32Array(numElements(shape));
  Rng.stream(seed, `video.${id}`).fillNormal(data);
  return { id, pixels: f32Tensor(shape, data) };
}

/** One video as the encoder receives it. */
interface Clip {
  readonly pixels: Float32Array;
  readonly notes: readonly string[];
  /** null for given pixel values (nothing decoded). */
  readonly timings: PreprocessTimings | null;
}

/** The videos' clips in order, decoded ahead (see RetrieveOptions.prefetch). */
interface ClipStream {
  readonly where: string;
  take(): Promise<Clip>;
  close(): Promise<void>;
}

/**
 * The clip of each source, in order: files decoded `prefetch` clips ahead on a worker
 * thread (video-pool.ts), or on this thread one at a time when prefetch is 0; given pixel
 * values checked against the model's shape. No worker is started when no source is a file.
 */
function openClips(
  videos: readonly VideoSource[],
  spec: RetrievalModelSpec,
  prefetch: number,
): ClipStream {
  if (!(Number.isSafeInteger(prefetch) && prefetch >= 0)) {
    throw new ConfigError("prefetch", `must be an integer >= 0, got ${prefetch}`);
  }
  const { model, frames } = spec.vision;
  const pixelShape = [frames, model.channels, model.imageSize, model.imageSize];
  const files = videos.some((source) => "path" in source);
  const preprocessor: VideoPreprocessor | null = !files
    ? null
    : prefetch === 0
      ? mainThreadPreprocessor("prefetch 0: one clip at a time")
      : openVideoPreprocessor();
  const load = async (source: VideoSource, _: number, signal: AbortSignal): Promise<Clip> => {
    if ("path" in source) {
      const pre = await preprocessor!.preprocess(source.path, {
        frames,
        imageSize: model.imageSize,
        signal,
      });
      return {
        pixels: pre.pixelValues.data,
        notes: pre.notes.map((note) => `${source.id}: ${note}`),
        timings: pre.timings,
      };
    }
    if (numElements(source.pixels.shape) !== numElements(pixelShape)) {
      throw new InputError(
        `video "${source.id}" has pixel values of shape [${source.pixels.shape.join(",")}], the model needs [${pixelShape.join(",")}]`,
      );
    }
    return { pixels: source.pixels.data as Float32Array, notes: [], timings: null };
  };
  const queue = new Prefetch(videos, load, prefetch);
  const ahead = prefetch === 0 ? "" : `, ${prefetch} clip${prefetch === 1 ? "" : "s"} ahead`;
  return {
    where:
      preprocessor === null
        ? "nothing to decode (pixel values given)"
        : `${preprocessor.where}${ahead}`,
    take: () => queue.take(),
    close: async () => {
      await queue.close();
      await preprocessor?.close();
    },
  };
}

/** What encodeVideos returns: per video its embeddings, and where the time went. */
interface EncodedVideos {
  readonly embeds: Float32Array[];
  readonly feats: Float32Array[];
  readonly embedShape: readonly number[];
  readonly notes: string[];
  readonly timings: Pick<
    RetrieveTimings,
    | "preprocessMs"
    | "preprocessSteps"
    | "preprocessWaitMs"
    | "videoCopyMs"
    | "videoMs"
    | "videoWallMs"
  >;
}

/**
 * Runs the video encoder over every clip in batches of spec.vision.batch (a short last
 * batch padded with its last clip), taking clips from the stream as it goes, with up to
 * encoder.size batches in flight (one per worker). A batch of one clip is the clip's own
 * buffer (no copy; handed to a worker, it is transferred); larger batches are stacked.
 */
async function encodeVideos(
  encoder: ExecutablePool,
  clips: ClipStream,
  videos: readonly VideoSource[],
  spec: RetrievalModelSpec,
  say: (message: string) => void,
): Promise<EncodedVideos> {
  const vb = spec.vision.batch;
  const { model, frames } = spec.vision;
  const pixelShape = [frames, model.channels, model.imageSize, model.imageSize];
  const embeds: Float32Array[] = [];
  const feats: Float32Array[] = [];
  const notes: string[] = [];
  const steps = { probeMs: 0, decodeMs: 0, resizeMs: 0 };
  let waitMs = 0;
  let copyMs = 0;
  let videoMs = 0;
  let embedShape: readonly number[] = [];
  say(
    `encoding ${videos.length} videos, ${vb} per batch (decoding: ${clips.where}; encoder: ${encoder.detail})`,
  );
  const started = performance.now();
  const batches = Math.ceil(videos.length / vb);
  const outputs: { embeds: Float32Array[]; feats: Float32Array[] }[] = [];
  // Runs in flight; each settles without rejecting and leaves its failure here.
  const inFlight = new Set<Promise<void>>();
  let failure: { readonly error: unknown } | null = null;
  let encodedCount = 0;
  for (let b = 0; b < batches && failure === null; b++) {
    const first = b * vb;
    const n = Math.min(vb, videos.length - first);
    // A free encoder first, then its clips: decoding keeps going meanwhile.
    while (inFlight.size >= encoder.size && failure === null) await Promise.race(inFlight);
    if (failure !== null) break;
    let t = performance.now();
    const batch: Clip[] = [];
    for (let i = 0; i < n; i++) batch.push(await clips.take());
    waitMs += performance.now() - t;
    for (const clip of batch) {
      notes.push(...clip.notes);
      if (clip.timings === null) continue;
      steps.probeMs += clip.timings.probeMs;
      steps.decodeMs += clip.timings.decodeMs;
      steps.resizeMs += clip.timings.resizeMs;
    }
    t = performance.now();
    const pixels =
      vb === 1
        ? f32Tensor([1, ...pixelShape], batch[0]!.pixels)
        : stack(
            batch.map((clip) => clip.pixels),
            pixelShape,
            vb,
          );
    copyMs += performance.now() - t;
    const runStarted = performance.now();
    // Stacked batches and decoded clips are this function's to give away; a caller's own
    // pixel values (VideoSource.pixels) are copied.
    const own = vb > 1 || batch[0]!.timings !== null;
    const run = encoder.run({ pixel_values: pixels }, own).then((out) => {
      videoMs += performance.now() - runStarted;
      const copied = performance.now();
      const videoEmbeds = out.video_embeds!;
      embedShape = videoEmbeds.shape.slice(1);
      outputs[b] = {
        embeds: Array.from({ length: n }, (_, i) => item(videoEmbeds, i)),
        feats: Array.from({ length: n }, (_, i) => item(out.video_feat!, i)),
      };
      copyMs += performance.now() - copied;
      encodedCount += n;
      say(`encoded ${encodedCount}/${videos.length} videos`);
    });
    const tracked: Promise<void> = run
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  // The first failure is the error, once every run in flight has ended.
  await Promise.all(inFlight);
  if (failure !== null) throw (failure as { readonly error: unknown }).error;
  for (const out of outputs) {
    embeds.push(...out.embeds);
    feats.push(...out.feats);
  }
  return {
    embeds,
    feats,
    embedShape,
    notes,
    timings: {
      preprocessMs: steps.probeMs + steps.decodeMs + steps.resizeMs,
      preprocessSteps: steps,
      preprocessWaitMs: waitMs,
      videoCopyMs: copyMs,
      videoMs,
      videoWallMs: performance.now() - started,
    },
  };
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
  const vb = spec.vision.batch;
  const choices = options.kernels === undefined ? {} : { kernels: options.kernels };
  const backend = await pickBackend(options.backend, choices);
  const workers = workersFor(backend, Math.ceil(videos.length / vb), options.workers);
  // Decoding starts now, so that the first clips are ready when the parts are lowered.
  const clips = openClips(videos, spec, options.prefetch ?? vb * workers);
  t = performance.now();
  const parts: Part[] = [];
  let encoder: ExecutablePool | null = null;
  try {
    const weightReports: WeightLoadReport[] = [];
    const compileOptions = options.threads === undefined ? {} : { threads: options.threads };
    const weightsOf = (graph: Graph): WeightStore => {
      if (options.weightFile === undefined) return initWeights(graph, options.seed ?? 0);
      const bound = bindWeightFile(graph, options.weightFile, "");
      weightReports.push(bound.report);
      return bound.weights;
    };
    const lower = async (graph: Graph, cost: CostReport): Promise<Part> => {
      const executable = await backend.compile(graph, weightsOf(graph), compileOptions);
      return { graph, cost, executable };
    };
    const videoGraph = compiled.video.graph;
    encoder =
      workers === 1
        ? poolOf(await backend.compile(videoGraph, weightsOf(videoGraph), compileOptions))
        : await openExecutablePool(
            {
              backend: backend.name,
              choices,
              graph: videoGraph,
              weights: weightsOf(videoGraph),
              compile: compileOptions,
            },
            workers,
          );
    const text = await lower(compiled.text.graph, compiled.text.cost);
    parts.push(text);
    const itm = compiled.itm === null ? null : await lower(compiled.itm.graph, compiled.itm.cost);
    if (itm !== null) parts.push(itm);
    const lowerMs = performance.now() - t;

    // ---- videos: each encoded once, the next ones decoded meanwhile ----
    const encodedVideos = await encodeVideos(encoder, clips, videos, spec, say);
    const { embeds: videoEmbeds, feats: videoFeats, embedShape, notes } = encodedVideos;
    const vb = spec.vision.batch;

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
      backendDetail: encoder.detail,
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
        ...encodedVideos.timings,
        clipsPerSecond: (1000 * nv) / encodedVideos.timings.videoWallMs,
        textMs,
        itmMs,
        totalMs,
        videoMsPerClip: encodedVideos.timings.videoMs / nv,
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
      preprocessing: clips.where,
      videoFeats,
      textFeats,
    };
  } finally {
    await clips.close();
    await encoder?.close();
    for (const part of parts) part.executable.dispose();
  }
}
