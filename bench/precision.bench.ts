/**
 * Reduced precision (issue 11, item 2): speed and accuracy of `--precision int8` against
 * fp32 on the same backend, in one process.
 *
 * 1. Speed: the SViTT vision encoder (8 and 16 frames) in fp32 and int8, timed alternately
 *    run by run (bench/sink.bench.ts, timeAlternating). Target: int8 >= 1.8x faster on onnx.
 * 2. Accuracy on seeded clips (the full-size encoder, seeded weights, `clips` synthetic
 *    clips): per clip, the cosine similarity of the pooled embedding to fp32's and its
 *    largest absolute deviation (also relative to fp32's largest |value|), the largest
 *    deviation of the last hidden state, and how often token selection flips: the
 *    fraction of fp32's kept tokens (token_idx.j) that int8 does not keep, per drop.
 * 3. Retrieval agreement: one seeded `retrieve` run (synthetic clips x the bench captions,
 *    every pair reranked by ITM) per precision; top-1 agreement (the same best candidate)
 *    and recall@5 overlap (|top 5 ∩ top 5| / 5) of int8's rankings with fp32's, both ways,
 *    for the ITM rankings and the ITC similarities.
 * fp16 and bf16 are listed with the reason the compiler gives for refusing them.
 *
 *   npx tsx bench/precision.bench.ts [backend ...]     (default onnx)
 */
import { loadavg } from "node:os";
import {
  type BackendName,
  builtinVocab,
  compileVision,
  ConfigError,
  type HostTensor,
  initWeights,
  loadBackend,
  type Precision,
  type RetrieveResult,
  retrievalPreset,
  retrieve,
  syntheticVideo,
  visionPreset,
} from "../src/index.js";
import { availableBackends } from "./common.js";
import { type CaseSummary, machineDescription } from "./harness.js";
import { BENCH_CAPTIONS, ITM_PAIRS, RERANK_K } from "./retrieval.bench.js";
import { timeAlternating } from "./sink.bench.js";

// ---- speed ------------------------------------------------------------------------------------

export interface PrecisionSpeedRow {
  readonly backend: string;
  readonly frames: number;
  readonly fp32Ms: number;
  readonly int8Ms: number;
  readonly cases: readonly CaseSummary[];
}

export async function benchPrecisionSpeed(
  backends: readonly BackendName[],
  frames: readonly number[] = [8, 16],
  options: { rounds?: number } = {},
): Promise<PrecisionSpeedRow[]> {
  const rows: PrecisionSpeedRow[] = [];
  for (const f of frames) {
    const fp32 = compileVision(visionPreset(f)).graph;
    const int8 = compileVision({ ...visionPreset(f), precision: "int8" }).graph;
    const weights = initWeights(fp32, 0);
    const inputs = { pixel_values: syntheticVideoPixels(f, 0) };
    for (const backend of backends) {
      const cases = await timeAlternating(
        backend,
        [
          { name: `${backend} ${f}f fp32`, graph: fp32 },
          { name: `${backend} ${f}f int8`, graph: int8 },
        ],
        weights,
        inputs,
        options.rounds ?? 10,
      );
      rows.push({
        backend,
        frames: f,
        fp32Ms: cases[0]!.medianMs,
        int8Ms: cases[1]!.medianMs,
        cases,
      });
    }
  }
  return rows;
}

export function precisionSpeedTable(rows: readonly PrecisionSpeedRow[]): string {
  const lines = [
    "| backend | frames | fp32 ms (min-max) | int8 ms (min-max) | int8 speed-up (target >= 1.8x) |",
    "|---|---:|---:|---:|---:|",
  ];
  const timing = (c: CaseSummary | undefined) =>
    c === undefined ? "" : `${c.medianMs.toFixed(0)} (${c.minMs.toFixed(0)}-${c.maxMs.toFixed(0)})`;
  for (const r of rows) {
    lines.push(
      `| ${r.backend} | ${r.frames} | ${timing(r.cases[0])} | ${timing(r.cases[1])} | ${(r.fp32Ms / r.int8Ms).toFixed(2)}x |`,
    );
  }
  return lines.join("\n");
}

// ---- accuracy on seeded clips -------------------------------------------------------------

/** A seeded synthetic clip [1, T, 3, 224, 224] (the retrieval model's, so both parts agree). */
function syntheticVideoPixels(frames: number, seed: number): HostTensor {
  const spec = retrievalPreset(frames, "svitt");
  const video = syntheticVideo(spec, `clip${seed}`, seed);
  if (!("pixels" in video)) throw new Error("synthetic video without pixels");
  return { ...video.pixels, shape: [1, ...video.pixels.shape] } as HostTensor;
}

export interface ClipAccuracy {
  readonly clip: number;
  readonly pooledCosine: number;
  readonly pooledMaxDev: number;
  /** pooledMaxDev over fp32's largest |pooled value|. */
  readonly pooledRelDev: number;
  /** Largest deviation of the last hidden state over CLS and the tokens both keep. */
  readonly hiddenMaxDev: number;
  /** Per drop j: the fraction of fp32's kept tokens that int8 does not keep. */
  readonly flips: readonly number[];
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

function maxDev(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

function largest(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** The fraction of `want`'s entries missing from `got` (two kept-token sets). */
function flipFraction(got: ArrayLike<number>, want: ArrayLike<number>): number {
  const kept = new Set(Array.from(got));
  let missing = 0;
  for (let i = 0; i < want.length; i++) if (!kept.has(want[i]!)) missing++;
  return missing / want.length;
}

/**
 * Largest |int8 - fp32| of the last hidden state over the rows of CLS and of the tokens both
 * runs keep to the end (rows follow the last drop's kept positions, token_idx.(drops - 1),
 * so a flipped token puts a different token in a row; those rows are not compared).
 */
function sharedTokenDeviation(
  got: Record<string, HostTensor>,
  want: Record<string, HostTensor>,
  drops: number,
): number {
  const a = got.last_hidden_state!;
  const b = want.last_hidden_state!;
  const width = a.shape.at(-1)!;
  const rowOf = (t: HostTensor | undefined, rows: number) =>
    new Map(
      Array.from(t?.data ?? Array.from({ length: rows - 1 }, (_, i) => i), (p, r) => [p, r + 1]),
    );
  const rows = a.shape[1]!;
  const gotRows = rowOf(got[`token_idx.${drops - 1}`], rows);
  const wantRows = rowOf(want[`token_idx.${drops - 1}`], rows);
  const pairs: [number, number][] = [[0, 0]];
  for (const [position, row] of wantRows) {
    const other = gotRows.get(position);
    if (other !== undefined) pairs.push([other, row]);
  }
  let worst = 0;
  for (const [ra, rb] of pairs) {
    for (let c = 0; c < width; c++) {
      worst = Math.max(worst, Math.abs(a.data[ra * width + c]! - b.data[rb * width + c]!));
    }
  }
  return worst;
}

export async function measureAccuracy(
  backend: BackendName,
  frames: number,
  clips: number,
): Promise<ClipAccuracy[]> {
  const fp32 = compileVision(visionPreset(frames)).graph;
  const int8 = compileVision({ ...visionPreset(frames), precision: "int8" }).graph;
  const weights = initWeights(fp32, 0);
  const impl = await loadBackend(backend);
  const a = await impl.compile(fp32, weights);
  const b = await impl.compile(int8, weights);
  const drops = fp32.outputs.filter((o) => o.name.startsWith("token_idx.")).length;
  const rows: ClipAccuracy[] = [];
  try {
    for (let clip = 0; clip < clips; clip++) {
      const inputs = { pixel_values: syntheticVideoPixels(frames, clip) };
      const want = await a.run(inputs);
      const got = await b.run(inputs);
      const pooled = want.pooler_output!.data;
      rows.push({
        clip,
        pooledCosine: cosine(got.pooler_output!.data, pooled),
        pooledMaxDev: maxDev(got.pooler_output!.data, pooled),
        pooledRelDev: maxDev(got.pooler_output!.data, pooled) / largest(pooled),
        hiddenMaxDev: sharedTokenDeviation(got, want, drops),
        flips: Array.from({ length: drops }, (_, j) =>
          flipFraction(got[`token_idx.${j}`]!.data, want[`token_idx.${j}`]!.data),
        ),
      });
    }
  } finally {
    a.dispose();
    b.dispose();
  }
  return rows;
}

export function accuracyTable(rows: readonly ClipAccuracy[]): string {
  const lines = [
    "| clip | pooled cosine (>= 0.99) | pooled max dev | relative | last hidden max dev (tokens both keep) | kept tokens flipped per drop |",
    "|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.clip} | ${r.pooledCosine.toFixed(5)} | ${r.pooledMaxDev.toExponential(2)} | ${(100 * r.pooledRelDev).toFixed(2)}% | ${r.hiddenMaxDev.toExponential(2)} | ${r.flips.map((f) => `${(100 * f).toFixed(1)}%`).join(", ")} |`,
    );
  }
  return lines.join("\n");
}

// ---- retrieval agreement ------------------------------------------------------------------

export interface RankingAgreement {
  readonly ranking: string;
  readonly queries: number;
  readonly top1: number;
  readonly recall5Overlap: number;
  /** Median over queries of fp32's best score minus its second best. */
  readonly medianMargin: number;
  /** Median over queries of the largest |int8 - fp32| score among its candidates. */
  readonly medianDeviation: number;
}

type Scores = RetrieveResult["sim"];

/** Candidate indices of each row of a score matrix, best first (ties by index). */
function rankRows(scores: Scores): number[][] {
  const { rows, cols, data } = scores;
  return Array.from({ length: rows }, (_, r) =>
    Array.from({ length: cols }, (_, c) => c).sort(
      (x, y) => data[r * cols + y]! - data[r * cols + x]! || x - y,
    ),
  );
}

function transposed(scores: Scores): Scores {
  const { rows, cols, data } = scores;
  const t = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) t[c * rows + r] = data[r * cols + c]!;
  return { rows: cols, cols: rows, data: t };
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * top-1 agreement and recall@5 overlap of int8's rankings with fp32's, and how close the
 * fp32 candidates are (margin) against how far int8 moves the scores (deviation): where
 * the deviation exceeds the margin, the order is decided by quantisation noise.
 */
function agreement(
  ranking: string,
  got: readonly (readonly number[])[],
  want: readonly (readonly number[])[],
  gotScores: Scores,
  wantScores: Scores,
): RankingAgreement {
  let top1 = 0;
  let overlap = 0;
  const margins: number[] = [];
  const deviations: number[] = [];
  const { cols } = wantScores;
  for (let q = 0; q < want.length; q++) {
    if (got[q]![0] === want[q]![0]) top1++;
    const five = new Set(want[q]!.slice(0, 5));
    overlap += got[q]!.slice(0, 5).filter((c) => five.has(c)).length / Math.min(5, want[q]!.length);
    const row = Array.from(wantScores.data.subarray(q * cols, (q + 1) * cols)).sort(
      (a, b) => b - a,
    );
    margins.push(row.length > 1 ? row[0]! - row[1]! : 0);
    let worst = 0;
    for (let c = 0; c < cols; c++) {
      worst = Math.max(
        worst,
        Math.abs(gotScores.data[q * cols + c]! - wantScores.data[q * cols + c]!),
      );
    }
    deviations.push(worst);
  }
  return {
    ranking,
    queries: want.length,
    top1: top1 / want.length,
    recall5Overlap: overlap / want.length,
    medianMargin: medianOf(margins),
    medianDeviation: medianOf(deviations),
  };
}

async function retrieveAt(
  backend: BackendName,
  frames: number,
  clips: number,
  precision: Precision,
): Promise<RetrieveResult> {
  const base = retrievalPreset(frames, "svitt");
  const spec = { ...base, vision: { ...base.vision, precision }, texts: BENCH_CAPTIONS.length };
  return retrieve({
    spec,
    videos: Array.from({ length: clips }, (_, i) => syntheticVideo(spec, `clip${i}`, 0)),
    captions: BENCH_CAPTIONS.map((text, i) => ({ id: `c${i}`, text })),
    vocab: builtinVocab(),
    k: RERANK_K,
    pairsPerBatch: ITM_PAIRS,
    backend,
  });
}

export async function retrievalAgreement(
  backend: BackendName,
  frames: number,
  clips: number,
): Promise<RankingAgreement[]> {
  const fp32 = await retrieveAt(backend, frames, clips, "fp32");
  const int8 = await retrieveAt(backend, frames, clips, "int8");
  return [
    agreement("ITM video -> caption", int8.rankingI2t, fp32.rankingI2t, int8.itmI2t, fp32.itmI2t),
    agreement("ITM caption -> video", int8.rankingT2i, fp32.rankingT2i, int8.itmT2i, fp32.itmT2i),
    agreement("ITC video -> caption", rankRows(int8.sim), rankRows(fp32.sim), int8.sim, fp32.sim),
    agreement(
      "ITC caption -> video",
      rankRows(transposed(int8.sim)),
      rankRows(transposed(fp32.sim)),
      transposed(int8.sim),
      transposed(fp32.sim),
    ),
  ];
}

export function agreementTable(rows: readonly RankingAgreement[]): string {
  const lines = [
    "| ranking | queries | top-1 agreement | recall@5 overlap | fp32 top-1 margin (median) | int8 score deviation (median) |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.ranking} | ${r.queries} | ${(100 * r.top1).toFixed(1)}% | ${(100 * r.recall5Overlap).toFixed(1)}% | ${r.medianMargin.toExponential(2)} | ${r.medianDeviation.toExponential(2)} |`,
    );
  }
  return lines.join("\n");
}

/** What the compiler says to fp16 and bf16 (they run natively on no backend here). */
export function refusedPrecisions(): string[] {
  return (["fp16", "bf16"] as const).map((precision) => {
    try {
      compileVision({ ...visionPreset(8), precision });
      return `${precision}: compiled (unexpected)`;
    } catch (error) {
      return `${precision}: ${error instanceof ConfigError ? error.message : String(error)}`;
    }
  });
}

export interface PrecisionReport {
  readonly speed: readonly PrecisionSpeedRow[];
  readonly accuracy: readonly ClipAccuracy[];
  readonly retrieval: readonly RankingAgreement[];
  readonly refused: readonly string[];
}

export async function benchPrecision(
  backends: readonly BackendName[],
  frames: readonly number[] = [8, 16],
  options: { rounds?: number; clips?: number; retrievalClips?: number } = {},
): Promise<PrecisionReport> {
  const speed = await benchPrecisionSpeed(backends, frames, options);
  const accuracyBackend = backends[0]!;
  const accuracy = await measureAccuracy(accuracyBackend, 8, options.clips ?? 4);
  const retrieval = await retrievalAgreement(accuracyBackend, 8, options.retrievalClips ?? 8);
  return { speed, accuracy, retrieval, refused: refusedPrecisions() };
}

export function precisionSection(report: PrecisionReport): string[] {
  const backend = report.speed[0]?.backend ?? "";
  return [
    precisionSpeedTable(report.speed),
    `int8 against fp32 on ${backend}, 8 frames, seeded clips (full-size encoder, seeded weights):`,
    accuracyTable(report.accuracy),
    `Retrieval rankings, int8 against fp32 (one seeded retrieve run each, ${backend}, 8 frames):`,
    agreementTable(report.retrieval),
    `Refused: ${report.refused.join("; ")}`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = process.argv.slice(2) as BackendName[];
  const { ready, skipped } = await availableBackends(wanted.length > 0 ? wanted : ["onnx"]);
  for (const line of skipped) console.log(`skipped ${line}`);
  console.log(
    `${machineDescription()}; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  console.log(precisionSection(await benchPrecision(ready)).join("\n\n"));
}
