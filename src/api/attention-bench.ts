import type { Backend } from "../../backends/backend.js";
import type { KernelChoice } from "../../backends/registry.js";
import { type PatternSource, sparsifyAttention } from "../../passes/sparsify-attention.js";
import { analyzeCost } from "../cost.js";
import { ConfigError, SprigError } from "../ir/errors.js";
import type { Graph } from "../ir/graph.js";
import type { HostTensor } from "../ir/tensor.js";
import { type AttentionOnlyOptions, buildAttentionOnly, spreadTokenIndex } from "../models/beit.js";
import { BEIT_BASE, type BeitConfig, tokenWindow } from "../models/config.js";
import { initWeights, syntheticClip } from "../models/init.js";
import { SVITT_BLOCK_SIZE } from "../models/presets.js";
import { runPasses } from "../pass-manager.js";
import { parsePattern } from "../patterns/library/index.js";
import { window3dLabel, window3dLayout } from "../patterns/window3d.js";
import { median, pickBackend } from "./run.js";

/**
 * One layer's attention at SViTT sizes, block-sparse against dense, on one backend, timed
 * back to back in one process. The block-sparse side is SViTT's pattern (local 1 + random 3,
 * block 56, seed 0) or another one (BenchPattern): a 3-D neighbourhood window
 * (src/patterns/window3d.ts), whose rows are ragged and whose blocks are mostly partial, or
 * any pattern of the library.
 *
 * Both variants take the token index as a run-time input by default, so each computes its
 * relative position bias on every run, as every layer after the first token drop does
 * (a constant index lets a backend precompute the bias, which only the small sparse bias
 * fits: that would flatter the sparse side).
 */
export interface AttentionBenchResult {
  readonly backend: string;
  /** The block-sparse side's pattern, e.g. "svitt" or "window3d 3x7x7, block 56". */
  readonly pattern: string;
  readonly frames: number;
  readonly tokens: number;
  readonly sparseMs: number;
  readonly denseMs: number;
  /** What each variant ran on (Executable.detail), e.g. which attention kernel. */
  readonly sparseDetail: string;
  readonly denseDetail: string;
  readonly sparseMacs: number;
  readonly denseMacs: number;
  readonly reps: number;
}

export interface AttentionGraphs {
  readonly dense: Graph;
  readonly sparse: Graph;
  /** Sequence length N = 1 + kept local tokens. */
  readonly tokens: number;
}

/** The block-sparse pattern a bench times against dense attention. */
export type BenchPattern =
  | { readonly kind: "svitt" }
  | {
      readonly kind: "window3d";
      readonly kernel: readonly [number, number, number];
      readonly blockSize: number;
    }
  | {
      /** A pattern spec of the library (src/patterns/library/index.ts), e.g. "divided". */
      readonly kind: "spec";
      readonly spec: string;
      readonly blockSize: number;
    };

export const SVITT_BENCH_PATTERN: BenchPattern = { kind: "svitt" };

/**
 * A bench pattern from its command-line form: "svitt" (SViTT's own, as the authors run it:
 * padding "reference"), "window3d:KTxKHxKW", or any pattern spec of the library
 * (src/patterns/library/index.ts: "divided", "window3d:3x7x7 + causal", ...), each with an
 * optional ",block=BS" at the end (default: SViTT's block size 56), e.g.
 * "window3d:3x7x7,block=49".
 */
export function parseBenchPattern(text: string): BenchPattern {
  if (text === "svitt") return SVITT_BENCH_PATTERN;
  const [, spec, block] = /^(.*?)(?:,block=(\d+))?$/.exec(text)!;
  const blockSize = block === undefined ? SVITT_BLOCK_SIZE : Number(block);
  if (!(blockSize >= 1))
    throw new ConfigError("pattern", `block size must be >= 1, got ${blockSize}`);
  const window = /^window3d(?::(\d+)x(\d+)x(\d+))?$/.exec(spec!);
  if (window !== null) {
    const kernel = (
      window[1] === undefined ? [3, 7, 7] : [window[1], window[2], window[3]].map(Number)
    ) as [number, number, number];
    return { kind: "window3d", kernel, blockSize };
  }
  parsePattern(spec!, "pattern");
  return { kind: "spec", spec: spec!, blockSize };
}

/** "svitt", "window3d 3x7x7, block 56" or the spec's label with its block size. */
export function benchPatternLabel(pattern: BenchPattern): string {
  switch (pattern.kind) {
    case "svitt":
      return "svitt";
    case "window3d":
      return `${window3dLabel({ kernel: pattern.kernel })}, block ${pattern.blockSize}`;
    case "spec":
      return `${parsePattern(pattern.spec).label}, block ${pattern.blockSize}`;
    default:
      return pattern satisfies never;
  }
}

/** The sparsify-attention pattern source of a bench pattern for `frames` of `model`. */
function patternSource(pattern: BenchPattern, frames: number, model: BeitConfig): PatternSource {
  if (pattern.kind === "svitt") {
    return {
      kind: "svitt",
      blockSize: SVITT_BLOCK_SIZE,
      local: 1,
      random: 3,
      seed: 0,
      perHead: false,
    };
  }
  const grid = tokenWindow(model, frames);
  if (pattern.kind === "spec") {
    return {
      kind: "pattern",
      blockSize: pattern.blockSize,
      pattern: parsePattern(pattern.spec, "pattern"),
      seed: 0,
      perHead: false,
      grid,
    };
  }
  const spec = { grid, kernel: pattern.kernel };
  return {
    kind: "custom",
    blockSize: pattern.blockSize,
    label: window3dLabel(spec),
    layout: (site) =>
      window3dLayout(spec, pattern.blockSize, site.localTokens, `pattern ${window3dLabel(spec)}`),
  };
}

/** The dense attention node for `frames` and its block-sparse version (SViTT's by default). */
export function attentionGraphs(
  frames: number,
  options: AttentionOnlyOptions = {},
  model: BeitConfig = BEIT_BASE,
  pattern: BenchPattern = SVITT_BENCH_PATTERN,
): AttentionGraphs {
  const dense = buildAttentionOnly(model, frames, options);
  const sparse = runPasses(
    dense,
    [
      sparsifyAttention({
        pattern: patternSource(pattern, frames, model),
        // SViTT's runs as the authors' code does; a window's partial blocks need no padding.
        padding: pattern.kind === "svitt" ? "reference" : "masked",
      }),
    ],
    { debug: 0 },
  ).graph;
  const tokens = dense.nodes.find((n) => n.op === "input")!.outputs[0]!.shape[1]!;
  return { dense, sparse, tokens };
}

/**
 * Run-time inputs of an attention-only graph: seeded q, k, v and, when the graph takes one,
 * an evenly spread token index over the window.
 */
export function attentionInputs(
  graph: Graph,
  frames: number,
  model: BeitConfig = BEIT_BASE,
): Record<string, HostTensor> {
  const inputs = syntheticClip(graph, 0);
  const tokenIdx = graph.nodes.find((n) => n.op === "input" && n.attrs.name === "token_idx");
  if (tokenIdx !== undefined) {
    const [t, h, w] = tokenWindow(model, frames);
    inputs.token_idx = spreadTokenIndex(t * h * w, tokenIdx.outputs[0]!.shape[1]!);
  }
  return inputs;
}

/** Median ms of `reps` runs of `graph` on `backend`, after one untimed run. */
export async function timeGraph(
  backend: Backend,
  graph: Graph,
  inputs: Readonly<Record<string, HostTensor>>,
  reps: number,
  threads?: number,
): Promise<number> {
  return (await timeGraphDetailed(backend, graph, inputs, reps, threads)).ms;
}

/** timeGraph, with the executable's description of what ran. */
async function timeGraphDetailed(
  backend: Backend,
  graph: Graph,
  inputs: Readonly<Record<string, HostTensor>>,
  reps: number,
  threads?: number,
): Promise<{ ms: number; detail: string }> {
  const executable = await backend.compile(
    graph,
    initWeights(graph, 0),
    threads === undefined ? {} : { threads },
  );
  try {
    await executable.run(inputs);
    const samples: number[] = [];
    for (let i = 0; i < reps; i++) {
      const start = performance.now();
      await executable.run(inputs);
      samples.push(performance.now() - start);
    }
    return { ms: median(samples), detail: executable.detail };
  } finally {
    executable.dispose();
  }
}

export async function benchAttention(options: {
  frames: number;
  backend?: string;
  reps?: number;
  threads?: number;
  kernels?: KernelChoice;
  tokenIndex?: "constant" | "input";
  pattern?: BenchPattern;
}): Promise<AttentionBenchResult> {
  const reps = options.reps ?? 5;
  if (!(Number.isInteger(reps) && reps >= 1))
    throw new SprigError(`reps must be an integer >= 1, got ${reps}`);
  const backend = await pickBackend(
    options.backend,
    options.kernels === undefined ? {} : { kernels: options.kernels },
  );
  const pattern = options.pattern ?? SVITT_BENCH_PATTERN;
  const { dense, sparse, tokens } = attentionGraphs(
    options.frames,
    { tokenIndex: options.tokenIndex ?? "input" },
    BEIT_BASE,
    pattern,
  );
  const inputs = attentionInputs(dense, options.frames);
  const sparseRun = await timeGraphDetailed(backend, sparse, inputs, reps, options.threads);
  const denseRun = await timeGraphDetailed(backend, dense, inputs, reps, options.threads);
  return {
    backend: backend.name,
    pattern: benchPatternLabel(pattern),
    frames: options.frames,
    tokens,
    sparseMs: sparseRun.ms,
    denseMs: denseRun.ms,
    sparseDetail: sparseRun.detail,
    denseDetail: denseRun.detail,
    sparseMacs: analyzeCost(sparse).totals.attentionMacs,
    denseMacs: analyzeCost(dense).totals.attentionMacs,
    reps,
  };
}
