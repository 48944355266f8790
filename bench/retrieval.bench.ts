/**
 * The full-size SViTT retrieval model (BEiT-base + BERT-base, embed dim 256, 64 text
 * tokens), SViTT against dense vision, per backend, in one process:
 *
 * 1. Parts, as benny cases (compiled once, one untimed warm-up, then `executable.run`
 *    timed): the video encoder at batch 1 (per clip), the text encoder at batch 16 (per
 *    caption) and ITM at 8 pairs (per pair), with each part's MACs from the compiled cost
 *    report and GFLOP/s = 2 * MACs / time. The text encoder does not depend on the vision
 *    variant (same graph), so it is measured once and shown for both.
 * 2. The whole job, `retrieve` of `clips` synthetic clips x `captions` captions with
 *    k = 128, which covers every candidate, so every pair is reranked with ITM. Each
 *    repetition is a fresh job (compile, lower, encode, ITC, ITM), timed by retrieve itself;
 *    SViTT and dense repetitions alternate so that drift on a shared machine hits both.
 *
 *   npx tsx bench/retrieval.bench.ts [backend ...]     (8 frames; default onnx tfjs-wasm)
 */
import { writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import {
  type BackendName,
  builtinVocab,
  compileProgram,
  i32Tensor,
  median,
  type RetrieveResult,
  retrievalParts,
  retrievalPreset,
  retrieve,
  syntheticClip,
  syntheticVideo,
  tokenize,
  type Variant,
} from "../src/index.js";
import { availableBackends, graphCase } from "./common.js";
import {
  type BenchCase,
  markdownTable,
  RESULTS_DIR,
  runSuite,
  type SuiteSummary,
} from "./harness.js";

/** Sixteen short captions, the text side of every measurement. */
export const BENCH_CAPTIONS: readonly string[] = [
  "a man is playing a guitar on a stage",
  "a woman slices vegetables in a kitchen",
  "two dogs run across a grassy field",
  "a child rides a bicycle down the street",
  "a group of people dance at a party",
  "a car drives along a mountain road",
  "a cat sleeps on a sofa in the sun",
  "someone pours water into a glass",
  "a man explains something in front of a whiteboard",
  "waves crash against rocks at the beach",
  "a person types on a laptop at a desk",
  "players kick a ball around a football pitch",
  "a woman sings into a microphone",
  "a plane takes off from a runway",
  "people walk through a busy market",
  "a chef flips a pancake in a pan",
];

/** The part batches the brief fixes: one clip, sixteen captions, eight pairs. */
export const TEXT_BATCH = 16;
export const ITM_PAIRS = 8;
/** k_test of the released configs; with 16 x 16 it reranks every pair. */
export const RERANK_K = 128;

/**
 * Whole jobs per variant by backend, sized on the project machine (2 cores): one SViTT and
 * one dense 16 x 16 job take about 1 minute on onnx and about 7 minutes on tfjs-wasm, so the
 * suite on both (parts included) takes about 22 minutes.
 */
const JOB_REPETITIONS: Readonly<Record<string, number>> = { onnx: 5, "tfjs-wasm": 2 };

export function jobRepetitions(backend: string): number {
  return JOB_REPETITIONS[backend] ?? 1;
}

const VARIANTS: readonly Variant[] = ["svitt", "dense"];

/** One part at one vision variant: time per item and work per item. */
export interface PartFigure {
  readonly msPerItem: number;
  readonly macsPerItem: number;
  readonly gflops: number;
}

export interface RetrievalPartsRow {
  readonly backend: string;
  readonly frames: number;
  readonly variant: Variant;
  readonly video: PartFigure;
  /** Measured once (the text encoder is the same graph for both variants). */
  readonly text: PartFigure;
  readonly itm: PartFigure;
}

/** Medians over the repetitions of one whole `retrieve` job. */
export interface RetrievalJobRow {
  readonly backend: string;
  readonly frames: number;
  readonly variant: Variant;
  readonly clips: number;
  readonly captions: number;
  readonly k: number;
  readonly pairsScored: number;
  readonly repetitions: number;
  readonly totalMsRuns: readonly number[];
  readonly totalMs: number;
  readonly compileMs: number;
  readonly lowerMs: number;
  readonly videoMsPerClip: number;
  readonly textMsPerCaption: number;
  readonly itmMsPerPair: number;
  readonly macs: RetrieveResult["macs"];
}

export interface RetrievalOptions {
  /** benny's minimum samples per part case (default 3). */
  readonly minSamples?: number;
  /** Whole jobs per variant (default: jobRepetitions(backend)). */
  readonly repetitions?: number;
  /** Synthetic clips in the job (default 16); captions are the first min(clips, 16). */
  readonly clips?: number;
}

/** The 1-minute load average, sampled every 10 s while one backend ran (the machine is shared). */
export interface LoadFigure {
  readonly cores: number;
  readonly mean: number;
  readonly max: number;
  readonly samples: number;
}

export interface RetrievalBackendResult {
  readonly backend: string;
  readonly frames: number;
  readonly load: LoadFigure;
  readonly summary: SuiteSummary;
  readonly parts: readonly RetrievalPartsRow[];
  readonly jobs: readonly RetrievalJobRow[];
}

/** Samples the 1-minute load average until `stop` is called. */
function sampleLoad(): { stop: () => LoadFigure } {
  const samples = [loadavg()[0]!];
  const timer = setInterval(() => samples.push(loadavg()[0]!), 10_000);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      samples.push(loadavg()[0]!);
      return {
        cores: cpus().length,
        mean: samples.reduce((a, b) => a + b, 0) / samples.length,
        max: Math.max(...samples),
        samples: samples.length,
      };
    },
  };
}

const gflopsOf = (macs: number, ms: number) => (2 * macs) / (ms / 1000) / 1e9;

const caseName = (backend: string, frames: number, part: string, variant: Variant | "both") =>
  `retrieval ${backend} ${frames}f ${part} ${variant}`;

/** The token ids and masks of the bench captions, [16, 64] each. */
function captionInputs(textLength: number) {
  return tokenize(builtinVocab(), BENCH_CAPTIONS.slice(0, TEXT_BATCH), textLength);
}

/** The five part cases: video and ITM per variant, the text encoder once. */
function partCases(backend: BackendName, frames: number): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const variant of VARIANTS) {
    const spec = { ...retrievalPreset(frames, variant), texts: TEXT_BATCH };
    const parts = retrievalParts(spec, ITM_PAIRS);
    const video = compileProgram(parts.video);
    cases.push(
      graphCase(
        caseName(backend, frames, "video", variant),
        backend,
        video.graph,
        syntheticClip(video.graph, 0),
        video.cost.totals.macs,
      ),
    );
    const itm = compileProgram(parts.itm);
    // Synthetic video and text embeddings; the mask is that of the first eight captions.
    const L = spec.textLength;
    const mask = captionInputs(L).attentionMask.data;
    const pairMask = i32Tensor([ITM_PAIRS, L], mask.slice(0, ITM_PAIRS * L));
    cases.push(
      graphCase(
        caseName(backend, frames, "itm", variant),
        backend,
        itm.graph,
        { ...syntheticClip(itm.graph, 0), attention_mask: pairMask },
        itm.cost.totals.macs,
      ),
    );
    if (variant === "svitt") {
      const text = compileProgram(parts.text);
      const encoded = captionInputs(spec.textLength);
      cases.push(
        graphCase(
          caseName(backend, frames, "text", "both"),
          backend,
          text.graph,
          { input_ids: encoded.inputIds, attention_mask: encoded.attentionMask },
          text.cost.totals.macs,
        ),
      );
    }
  }
  return cases;
}

/** Per-item figures of the part cases, from one benny summary. */
function partRows(
  backend: string,
  frames: number,
  summary: SuiteSummary,
  cases: readonly BenchCase[],
): RetrievalPartsRow[] {
  const figure = (name: string, items: number): PartFigure => {
    const measured = summary.cases.find((c) => c.name === name)!;
    const macs = cases.find((c) => c.name === name)!.macs!;
    return {
      msPerItem: measured.medianMs / items,
      macsPerItem: macs / items,
      gflops: gflopsOf(macs, measured.medianMs),
    };
  };
  const text = figure(caseName(backend, frames, "text", "both"), TEXT_BATCH);
  return VARIANTS.map((variant) => ({
    backend,
    frames,
    variant,
    video: figure(caseName(backend, frames, "video", variant), 1),
    text,
    itm: figure(caseName(backend, frames, "itm", variant), ITM_PAIRS),
  }));
}

/** One whole retrieve job of `clips` synthetic clips against the first captions. */
async function retrieveOnce(
  backend: BackendName,
  frames: number,
  variant: Variant,
  clips: number,
): Promise<RetrieveResult> {
  const captionCount = Math.min(clips, BENCH_CAPTIONS.length);
  const spec = { ...retrievalPreset(frames, variant), texts: Math.min(TEXT_BATCH, captionCount) };
  return retrieve({
    spec,
    videos: Array.from({ length: clips }, (_, i) => syntheticVideo(spec, `clip${i}`, 0)),
    captions: BENCH_CAPTIONS.slice(0, captionCount).map((text, i) => ({ id: `c${i}`, text })),
    vocab: builtinVocab(),
    k: RERANK_K,
    pairsPerBatch: ITM_PAIRS,
    backend,
  });
}

function jobRow(
  backend: string,
  frames: number,
  variant: Variant,
  results: readonly RetrieveResult[],
): RetrievalJobRow {
  const first = results[0]!;
  const med = (pick: (t: RetrieveResult["timings"]) => number) =>
    median(results.map((r) => pick(r.timings)));
  return {
    backend,
    frames,
    variant,
    clips: first.videoIds.length,
    captions: first.captions.length,
    k: first.k,
    pairsScored: first.pairsScored,
    repetitions: results.length,
    totalMsRuns: results.map((r) => r.timings.totalMs),
    totalMs: med((t) => t.totalMs),
    compileMs: med((t) => t.compileMs),
    lowerMs: med((t) => t.lowerMs),
    videoMsPerClip: med((t) => t.videoMsPerClip),
    textMsPerCaption: med((t) => t.textMsPerCaption),
    itmMsPerPair: med((t) => t.itmMsPerPair),
    macs: first.macs,
  };
}

/** The whole jobs, SViTT and dense alternating, `repetitions` of each. */
async function benchJobs(
  backend: BackendName,
  frames: number,
  repetitions: number,
  clips: number,
): Promise<RetrievalJobRow[]> {
  const results = new Map<Variant, RetrieveResult[]>(VARIANTS.map((v) => [v, []]));
  for (let rep = 1; rep <= repetitions; rep++) {
    for (const variant of VARIANTS) {
      const result = await retrieveOnce(backend, frames, variant, clips);
      results.get(variant)!.push(result);
      const t = result.timings;
      console.log(
        `retrieve ${backend} ${frames}f ${variant} ${rep}/${repetitions}: total ${t.totalMs.toFixed(0)} ms (video ${t.videoMs.toFixed(0)}, text ${t.textMs.toFixed(0)}, ITM ${t.itmMs.toFixed(0)} over ${result.pairsScored} pairs)`,
      );
    }
  }
  return VARIANTS.map((v) => jobRow(backend, frames, v, results.get(v)!));
}

export async function benchRetrieval(
  backends: readonly BackendName[],
  frames: readonly number[] = [8],
  options: RetrievalOptions = {},
): Promise<RetrievalBackendResult[]> {
  const out: RetrievalBackendResult[] = [];
  for (const backend of backends) {
    for (const f of frames) {
      const sampler = sampleLoad();
      const cases = partCases(backend, f);
      const summary = await runSuite(`retrieval-${backend}-${f}f`, cases, {
        minSamples: options.minSamples ?? 3,
        maxTime: 5,
      });
      const parts = partRows(backend, f, summary, cases);
      const jobs = await benchJobs(
        backend,
        f,
        options.repetitions ?? jobRepetitions(backend),
        options.clips ?? 16,
      );
      const load = sampler.stop();
      const result = { backend, frames: f, load, summary, parts, jobs };
      await writeFile(
        new URL(`retrieval-${backend}-${f}f-jobs.json`, RESULTS_DIR),
        `${JSON.stringify({ machine: summary.machine, date: summary.date, load, parts, jobs }, null, 2)}\n`,
      );
      out.push(result);
    }
  }
  return out;
}

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const gmac = (macs: number) => (macs / 1e9).toFixed(2);
const times = (x: number) => `${x.toFixed(2)}x`;

/** Per part: ms per item, GMAC per item and GFLOP/s, SViTT against dense. */
export function partsTable(rows: readonly RetrievalPartsRow[]): string {
  const svitt = rows.find((r) => r.variant === "svitt")!;
  const dense = rows.find((r) => r.variant === "dense")!;
  const lines = [
    "| part | per | SViTT ms | dense ms | speed-up | SViTT GMAC | dense GMAC | MAC ratio | SViTT GFLOP/s | dense GFLOP/s |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const line = (part: string, per: string, s: PartFigure, d: PartFigure) =>
    `| ${part} | ${per} | ${ms(s.msPerItem)} | ${ms(d.msPerItem)} | ${times(d.msPerItem / s.msPerItem)} | ${gmac(s.macsPerItem)} | ${gmac(d.macsPerItem)} | ${times(d.macsPerItem / s.macsPerItem)} | ${s.gflops.toFixed(1)} | ${d.gflops.toFixed(1)} |`;
  lines.push(line("video encoder (batch 1)", "clip", svitt.video, dense.video));
  lines.push(
    line(`text encoder (batch ${TEXT_BATCH}, one case)`, "caption", svitt.text, dense.text),
  );
  lines.push(line(`ITM (${ITM_PAIRS} pairs)`, "pair", svitt.itm, dense.itm));
  return lines.join("\n");
}

/** The whole job: medians of totalMs and of retrieve's per-part timings, and the speed-up. */
export function jobsTable(rows: readonly RetrievalJobRow[]): string {
  const svitt = rows.find((r) => r.variant === "svitt")!;
  const dense = rows.find((r) => r.variant === "dense")!;
  const lines = [
    "| vision | total ms (median) | runs ms | compile ms | lower ms | video ms/clip | text ms/caption | ITM ms/pair | pairs scored |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of [svitt, dense]) {
    lines.push(
      `| ${r.variant === "svitt" ? "SViTT" : "dense"} | ${ms(r.totalMs)} | ${r.totalMsRuns.map(ms).join(", ")} | ${ms(r.compileMs)} | ${ms(r.lowerMs)} | ${ms(r.videoMsPerClip)} | ${ms(r.textMsPerCaption)} | ${ms(r.itmMsPerPair)} | ${r.pairsScored} |`,
    );
  }
  lines.push(
    `| speed-up (dense / SViTT) | ${times(dense.totalMs / svitt.totalMs)} | | | | ${times(dense.videoMsPerClip / svitt.videoMsPerClip)} | ${times(dense.textMsPerCaption / svitt.textMsPerCaption)} | ${times(dense.itmMsPerPair / svitt.itmMsPerPair)} | |`,
  );
  return lines.join("\n");
}

/** One backend's section: the parts table and the whole-job table. */
export function retrievalSection(result: RetrievalBackendResult): string {
  const job = result.jobs[0]!;
  return [
    `### ${result.backend}, ${result.frames} frames`,
    "",
    `1-minute load average while it ran (sampled every 10 s, ${result.load.cores} cores): mean ${result.load.mean.toFixed(2)}, max ${result.load.max.toFixed(2)}.`,
    "",
    "Parts (benny medians; one clip, 16 captions, 8 pairs per run):",
    "",
    partsTable(result.parts),
    "",
    `Whole \`retrieve\`: ${job.clips} clips x ${job.captions} captions, k ${job.k}, medians of ${job.repetitions} fresh job${job.repetitions === 1 ? "" : "s"} per variant (total includes compile and lowering):`,
    "",
    jobsTable(result.jobs),
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = process.argv.slice(2) as BackendName[];
  const { ready, skipped } = await availableBackends(
    wanted.length > 0 ? wanted : ["onnx", "tfjs-wasm"],
  );
  for (const line of skipped) console.log(`skipped ${line}`);
  for (const result of await benchRetrieval(ready)) {
    console.log(`${markdownTable(result.summary)}\n`);
    console.log(`${retrievalSection(result)}\n`);
  }
}
