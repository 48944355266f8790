import { builtinCaptions } from "../inputs/captions.js";
import { builtinVocab } from "../inputs/vocab-builtin.js";
import { ConfigError } from "../ir/errors.js";
import type { HostTensor } from "../ir/tensor.js";
import type { MemoryBudget } from "../memory.js";
import type { VisionModelSpec } from "../models/config.js";
import { MODELS } from "../models/index.js";
import { visionPreset } from "../models/presets.js";
import {
  type RetrievalModelSpec,
  retrievalModel,
  retrievalPreset,
} from "../models/retrieval/index.js";
import { definePattern, type Pattern, type TokenPredicate } from "../patterns/language.js";
import { parsePattern } from "../patterns/library/index.js";
import { type PlotSeries, scatterScene } from "../pictures/plot.js";
import type { Scene } from "../pictures/scene.js";
import { type CompileOptions, compileModel } from "./compile.js";
import { retrieve, syntheticVideo } from "./retrieve.js";
import { runModel } from "./run.js";

/**
 * Pattern experiments (`sprig explore`): for each pattern (a library spec, or a pattern
 * object such as a module's predicate) and each keep rate, compile the vision encoder with
 * that pattern and SViTT's token drops at that rate, and measure
 *   - MACs (the compiled graph's cost report),
 *   - the median forward time on one backend,
 *   - how far its output moves from the dense model's (no block sparsity, no drops) with the
 *     same weights and input: the cosine similarity of the pooled embedding (pooler_output),
 *     cos = a·b / (|a| |b|), averaged over the batch,
 *   - optionally, with the whole retrieval model (retrieve), the agreement of its rankings
 *     with the dense model's: the share of videos whose best caption, and of captions whose
 *     best video, is the dense model's.
 * Weights are seeded (initWeights: one stream per weight name, so the sparse and dense
 * graphs get the same values); with seeded weights the numbers say how much a pattern
 * perturbs the computation, not how well it would train.
 */
export interface ExploreCandidate {
  /** Its name in the table: the spec, or a module export's name. */
  readonly name: string;
  /** A library pattern spec ("window3d:3x7x7"), or a pattern of the language. */
  readonly pattern: string | Pattern;
}

export interface ExploreOptions {
  /** The vision encoder to vary (frames, architecture, block size, token order, drop layers). */
  readonly spec: VisionModelSpec;
  readonly candidates: readonly ExploreCandidate[];
  /** Keep rates of the token drops; 1 drops none. */
  readonly keepRates: readonly number[];
  readonly backend?: string;
  /** Timed forwards per variant (default 3, after one warm-up). */
  readonly reps?: number;
  readonly seed?: number;
  /** The clip (pixel_values); default: the model's synthetic clip. */
  readonly inputs?: Readonly<Record<string, HostTensor>>;
  /** Also score retrieval rankings over this many synthetic clips and built-in captions (1-4). */
  readonly retrievalClips?: number;
  readonly budget?: MemoryBudget;
  readonly onProgress?: (line: string) => void;
}

export interface ExploreRow {
  readonly name: string;
  /** The pattern's own label ("window3d 3x7x7"). */
  readonly label: string;
  readonly keepRate: number;
  readonly macs: number;
  readonly attentionMacs: number;
  readonly medianMs: number;
  readonly cosine: number;
  /** Share of top-1 rankings equal to the dense model's, both ways; null when not scored. */
  readonly retrieval: { readonly videoToCaption: number; readonly captionToVideo: number } | null;
}

export interface ExploreResult {
  readonly backend: string;
  readonly frames: number;
  readonly dense: {
    readonly macs: number;
    readonly attentionMacs: number;
    readonly medianMs: number;
  };
  readonly rows: readonly ExploreRow[];
}

/** A module export as a candidate: a Pattern, or a plain predicate (q, k, head) => boolean. */
export function candidateFromExport(name: string, value: unknown): ExploreCandidate | null {
  if (typeof value === "function") {
    return { name, pattern: definePattern({ label: name, reads: value as TokenPredicate }) };
  }
  if (isPattern(value)) return { name, pattern: value };
  return null;
}

function isPattern(value: unknown): value is Pattern {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.label === "string" &&
    typeof v.at === "function" &&
    (v.needs === "grid" || v.needs === "order")
  );
}

/** The spec at `keepRate` with `pattern` (a spec string; objects go through compile options). */
function variantSpec(
  base: VisionModelSpec,
  keepRate: number,
  pattern: string | null,
): VisionModelSpec {
  const attention = base.sparsity.attention;
  if (attention === null) {
    throw new ConfigError(
      "sparsity.attention",
      "explore varies the attention pattern: it must be on (not --dense)",
    );
  }
  const dropAfter =
    base.sparsity.tokens?.dropAfter ?? visionPreset(base.frames).sparsity.tokens?.dropAfter ?? [];
  return {
    ...base,
    sparsity: {
      ...base.sparsity,
      attention: pattern === null ? attention : { ...attention, pattern },
      tokens: { keepRate, dropAfter },
    },
  };
}

function pooledCosine(a: HostTensor, b: HostTensor): number {
  const [batch, width] = a.shape as [number, number];
  let sum = 0;
  for (let i = 0; i < batch; i++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let j = 0; j < width; j++) {
      const x = a.data[i * width + j]!;
      const y = b.data[i * width + j]!;
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    sum += dot / Math.sqrt(na * nb);
  }
  return sum / batch;
}

export async function explore(options: ExploreOptions): Promise<ExploreResult> {
  const { spec, keepRates } = options;
  if (options.candidates.length === 0)
    throw new ConfigError("patterns", "explore needs at least one pattern");
  for (const keep of keepRates) {
    if (!(keep > 0 && keep <= 1))
      throw new ConfigError("keepRates", `each must be in (0, 1], got ${keep}`);
  }
  const clips = options.retrievalClips ?? 0;
  if (!(Number.isInteger(clips) && clips >= 0 && clips <= 4)) {
    throw new ConfigError("retrieval", `clips must be an integer in [0, 4], got ${clips}`);
  }
  const progress = options.onProgress ?? (() => undefined);
  const run = async (variant: VisionModelSpec, compile: CompileOptions) => {
    const compiled = compileModel(MODELS.vision, variant, compile);
    return runModel(MODELS.vision, variant, {
      compiled,
      reps: options.reps ?? 3,
      warmup: 1,
      seed: options.seed ?? 0,
      ...(options.backend === undefined ? {} : { backend: options.backend }),
      ...(options.inputs === undefined ? {} : { inputs: options.inputs }),
      ...(options.budget === undefined ? {} : { budget: options.budget }),
    });
  };
  const denseSpec = MODELS.vision.dense(spec);
  progress("dense model");
  const dense = await run(denseSpec, {});
  const denseRanking = clips > 0 ? await rankings(denseSpec, {}, clips, options) : null;
  const rows: ExploreRow[] = [];
  for (const candidate of options.candidates) {
    const object = typeof candidate.pattern === "string" ? null : candidate.pattern;
    const label = object?.label ?? parsePattern(candidate.pattern as string, "patterns").label;
    const compile: CompileOptions = object === null ? {} : { attentionPattern: object };
    for (const keepRate of keepRates) {
      progress(`${candidate.name}, keep ${keepRate}`);
      const variant = variantSpec(
        spec,
        keepRate,
        object === null ? (candidate.pattern as string) : null,
      );
      const result = await run(variant, compile);
      const ranking = clips > 0 ? await rankings(variant, compile, clips, options) : null;
      rows.push({
        name: candidate.name,
        label,
        keepRate,
        macs: result.compiled.cost.totals.macs,
        attentionMacs: result.compiled.cost.totals.attentionMacs,
        medianMs: result.medianMs,
        cosine: pooledCosine(result.outputs.pooler_output!, dense.outputs.pooler_output!),
        retrieval:
          ranking === null || denseRanking === null ? null : agreement(ranking, denseRanking),
      });
    }
  }
  return {
    backend: dense.backend,
    frames: spec.frames,
    dense: {
      macs: dense.compiled.cost.totals.macs,
      attentionMacs: dense.compiled.cost.totals.attentionMacs,
      medianMs: dense.medianMs,
    },
    rows,
  };
}

interface Rankings {
  readonly i2t: readonly (readonly number[])[];
  readonly t2i: readonly (readonly number[])[];
}

/** The retrieval model's rankings with `vision` as its video encoder, seeded weights. */
async function rankings(
  vision: VisionModelSpec,
  compile: CompileOptions,
  clips: number,
  options: ExploreOptions,
): Promise<Rankings> {
  const preset = retrievalPreset(vision.frames, "svitt", vision.model.numLayers);
  const spec: RetrievalModelSpec = { ...preset, vision: { ...vision, batch: 1 } };
  retrievalModel.check(spec);
  const captions = builtinCaptions().captions.slice(0, clips);
  const result = await retrieve({
    spec,
    videos: Array.from({ length: clips }, (_, i) =>
      syntheticVideo(spec, `clip${i}`, options.seed ?? 0),
    ),
    captions,
    vocab: builtinVocab(),
    k: clips,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    ...(options.backend === undefined ? {} : { backend: options.backend }),
    ...(options.budget === undefined ? {} : { budget: options.budget }),
    compile,
  });
  return { i2t: result.rankingI2t, t2i: result.rankingT2i };
}

function agreement(a: Rankings, b: Rankings): NonNullable<ExploreRow["retrieval"]> {
  const top1 = (x: readonly (readonly number[])[], y: readonly (readonly number[])[]) =>
    x.filter((row, i) => row[0] === y[i]?.[0]).length / x.length;
  return { videoToCaption: top1(a.i2t, b.i2t), captionToVideo: top1(a.t2i, b.t2i) };
}

/** The result as a text table. */
export function formatExploreTable(result: ExploreResult): string {
  const retrieval = result.rows.some((r) => r.retrieval !== null);
  const header = [
    "pattern",
    "keep",
    "GMAC",
    "attn GMAC",
    "ms",
    "cosine",
    ...(retrieval ? ["v->c top-1", "c->v top-1"] : []),
  ];
  const g = (macs: number) => (macs / 1e9).toFixed(2);
  const rows: string[][] = [
    [
      "dense",
      "1",
      g(result.dense.macs),
      g(result.dense.attentionMacs),
      result.dense.medianMs.toFixed(0),
      "1.0000",
      ...(retrieval ? ["1.00", "1.00"] : []),
    ],
    ...result.rows.map((r) => [
      r.name,
      `${r.keepRate}`,
      g(r.macs),
      g(r.attentionMacs),
      r.medianMs.toFixed(0),
      r.cosine.toFixed(4),
      ...(retrieval
        ? [
            r.retrieval?.videoToCaption.toFixed(2) ?? "-",
            r.retrieval?.captionToVideo.toFixed(2) ?? "-",
          ]
        : []),
    ]),
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [
    `${result.frames} frames on ${result.backend}; cosine: pooled embedding against the dense model, same weights`,
    line(header),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
  ].join("\n");
}

/**
 * The plot: GMAC across, cosine similarity to the dense model up, one series per pattern,
 * each point labelled with its keep rate and time ("0.6: 421 ms").
 */
export function exploreScene(result: ExploreResult): Scene {
  const byName = new Map<string, PlotSeries["points"][number][]>();
  for (const row of result.rows) {
    const points = byName.get(row.name) ?? [];
    points.push({
      x: row.macs / 1e9,
      y: row.cosine,
      label: `${row.keepRate}: ${row.medianMs.toFixed(0)} ms`,
    });
    byName.set(row.name, points);
  }
  const series: PlotSeries[] = [
    ...[...byName].map(([name, points]) => ({ name, points })),
    {
      name: "dense",
      points: [
        { x: result.dense.macs / 1e9, y: 1, label: `${result.dense.medianMs.toFixed(0)} ms` },
      ],
    },
  ];
  return scatterScene({
    title: `sprig explore: ${result.frames} frames, ${result.backend}`,
    xLabel: "GMAC per clip",
    yLabel: "cosine similarity of the pooled embedding to the dense model",
    series,
  });
}
