import type { Backend, Executable } from "../../backends/backend.js";
import {
  BACKEND_NAMES,
  type BackendChoices,
  type KernelChoice,
  loadBackend,
} from "../../backends/registry.js";
import { SprigError } from "../ir/errors.js";
import {
  checkGraphSizes,
  checkMemoryBudget,
  type ExtraMemory,
  estimateMemory,
  type MemoryBudget,
  type MemoryEstimate,
} from "../memory.js";
import type { HostTensor } from "../ir/tensor.js";
import type { VisionModelSpec } from "../models/config.js";
import type { ModelDefinition } from "../models/definition.js";
import { MODELS } from "../models/index.js";
import { initWeights } from "../models/init.js";
import { bindWeightFile, type WeightFile, type WeightLoadReport } from "../runtime/weight-file.js";
import type { WeightStore } from "../runtime/weights.js";
import { type CompiledModel, compileModel } from "./compile.js";

/**
 * The main job, for any model: compile it, give it weights (seeded, or the caller's) and
 * inputs (the model's synthetic clip and captions, or the caller's), lower it to a backend
 * and time repeated forwards.
 */
export interface RunOptions {
  /** Backend name; default: the fastest available here (FASTEST_FIRST). */
  readonly backend?: string;
  readonly threads?: number;
  /** sprig's own kernels for block-sparse attention (KernelChoice); default "auto". */
  readonly kernels?: KernelChoice;
  readonly reps?: number;
  readonly warmup?: number;
  readonly seed?: number;
  /** Weights by state_dict key (default: seeded, initWeights). */
  readonly weights?: WeightStore;
  /** A weights file to bind by name (see runtime/weight-file.ts); overrides `weights`. */
  readonly weightFile?: WeightFile;
  /** Inputs by name (default: the model's synthetic inputs). */
  readonly inputs?: Readonly<Record<string, HostTensor>>;
  /**
   * Refuse, before weights or inputs are created, a model whose memory estimate exceeds
   * this (src/memory.ts). Without it only the size rules apply; the CLI passes this
   * machine's memory or --max-memory.
   */
  readonly budget?: MemoryBudget;
  /** Memory held besides the graph's data while it runs (e.g. the weights file as read). */
  readonly extraMemory?: readonly ExtraMemory[];
  /** The model compiled already by compileWithinBudget (same model and spec), not again. */
  readonly compiled?: CompiledModel;
  readonly onStage?: (stage: RunStage, detail: string) => void;
  readonly onRep?: (done: number, total: number, ms: number) => void;
}

export type RunStage = "compile" | "weights" | "lower" | "warmup" | "run" | "done";

export interface RunResult<Spec = unknown> {
  readonly backend: string;
  readonly backendDetail: string;
  readonly compiled: CompiledModel<Spec>;
  readonly stageMs: Readonly<Record<"compile" | "weights" | "lower" | "warmup", number>>;
  readonly runMs: readonly number[];
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly peakRssMb: number;
  /** What was loaded from `weightFile`; null for seeded or given weights. */
  readonly weightReport: WeightLoadReport | null;
  readonly outputs: Readonly<Record<string, HostTensor>>;
}

/** Backends in the order `run` prefers them when none is named (fastest first). */
export const FASTEST_FIRST: readonly string[] = [
  "onnx",
  "tfjs-wasm",
  "gpujs",
  "tfjs-cpu",
  "reference",
];

export async function pickBackend(
  name: string | undefined,
  choices: BackendChoices = {},
): Promise<Backend> {
  if (name !== undefined) {
    const backend = await loadBackend(name, choices);
    const availability = await backend.availability();
    if (!availability.ok)
      throw new SprigError(`backend ${name} is not available here: ${availability.reason}`);
    return backend;
  }
  for (const candidate of FASTEST_FIRST) {
    if (!(BACKEND_NAMES as readonly string[]).includes(candidate)) continue;
    const backend = await loadBackend(candidate, choices);
    if ((await backend.availability()).ok) return backend;
  }
  throw new SprigError("no backend is available");
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function peakRssMb(): number {
  // maxRSS is in kilobytes on Linux.
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Compiles `spec` of `model` and checks, before anything is allocated, that it can run:
 * the size rules on the dense graph the model builds (before the sparsity passes, which
 * take long on absurd sizes), then on the compiled graph with attention workspace, then
 * the memory estimate against `budget` (with `extra` memory held besides). Returns the
 * compiled model and its estimate; throws ResourceError naming the model.
 */
export function compileWithinBudget<Spec>(
  model: ModelDefinition<Spec>,
  spec: Spec,
  budget?: MemoryBudget,
  extra: readonly ExtraMemory[] = [],
): { compiled: CompiledModel<Spec>; memory: MemoryEstimate } {
  model.check(spec);
  const what = model.describe(spec);
  checkGraphSizes(model.build(spec).graph, what, { workspace: false });
  const compiled = compileModel(model, spec);
  checkGraphSizes(compiled.graph, what, { workspace: true });
  const memory = estimateMemory(compiled.graph);
  if (budget !== undefined) checkMemoryBudget(memory, budget, what, extra);
  return { compiled, memory };
}

/** Compiles `spec` of `model` and times it on a backend (see RunOptions). */
export async function runModel<Spec>(
  model: ModelDefinition<Spec>,
  spec: Spec,
  options: RunOptions = {},
): Promise<RunResult<Spec>> {
  const reps = options.reps ?? 5;
  const warmup = options.warmup ?? 1;
  if (!(Number.isInteger(reps) && reps >= 1))
    throw new SprigError(`reps must be an integer >= 1, got ${reps}`);
  if (!(Number.isInteger(warmup) && warmup >= 0))
    throw new SprigError(`warmup must be an integer >= 0, got ${warmup}`);
  const stage = options.onStage ?? (() => undefined);

  // Compiled and checked against the budget first, so a refusal comes before any loading.
  stage("compile", model.describe(spec));
  let t = performance.now();
  const compiled =
    (options.compiled as CompiledModel<Spec> | undefined) ??
    compileWithinBudget(model, spec, options.budget, options.extraMemory).compiled;
  const compileMs = performance.now() - t;
  const backend = await pickBackend(
    options.backend,
    options.kernels === undefined ? {} : { kernels: options.kernels },
  );

  const seed = options.seed ?? 0;
  stage(
    "weights",
    `${options.weightFile !== undefined ? options.weightFile.path : options.weights === undefined ? "seeded weights" : "given weights"} and ${options.inputs === undefined ? "synthetic inputs" : "given inputs"}`,
  );
  t = performance.now();
  const bound =
    options.weightFile === undefined
      ? null
      : bindWeightFile(compiled.graph, options.weightFile, model.checkpointPrefix);
  const weights = bound?.weights ?? options.weights ?? initWeights(compiled.graph, seed);
  const inputs = options.inputs ?? model.syntheticInputs(compiled.graph, spec, seed);
  const weightsMs = performance.now() - t;

  stage("lower", backend.name);
  t = performance.now();
  const executable: Executable = await backend.compile(
    compiled.graph,
    weights,
    options.threads === undefined ? {} : { threads: options.threads },
  );
  const lowerMs = performance.now() - t;
  try {
    stage("warmup", `${warmup} forward${warmup === 1 ? "" : "s"}`);
    t = performance.now();
    let outputs: Record<string, HostTensor> = {};
    for (let i = 0; i < warmup; i++) outputs = await executable.run(inputs);
    const warmupMs = performance.now() - t;
    stage("run", `${reps} timed forward${reps === 1 ? "" : "s"}`);
    const runMs: number[] = [];
    for (let i = 0; i < reps; i++) {
      const start = performance.now();
      outputs = await executable.run(inputs);
      const ms = performance.now() - start;
      runMs.push(ms);
      options.onRep?.(i + 1, reps, ms);
    }
    stage("done", "");
    return {
      backend: backend.name,
      backendDetail: executable.detail,
      compiled,
      stageMs: { compile: compileMs, weights: weightsMs, lower: lowerMs, warmup: warmupMs },
      runMs,
      medianMs: median(runMs),
      minMs: Math.min(...runMs),
      maxMs: Math.max(...runMs),
      peakRssMb: peakRssMb(),
      weightReport: bound?.report ?? null,
      outputs,
    };
  } finally {
    executable.dispose();
  }
}

/** The vision encoder's main job (runModel of the vision model). */
export function runVision(
  spec: VisionModelSpec,
  options: RunOptions = {},
): Promise<RunResult<VisionModelSpec>> {
  return runModel(MODELS.vision, spec, options);
}
