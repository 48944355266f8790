import type { Backend, Executable } from "../../backends/backend.js";
import {
  BACKEND_NAMES,
  type BackendChoices,
  type KernelChoice,
  loadBackend,
} from "../../backends/registry.js";
import { SprigError } from "../ir/errors.js";
import type { HostTensor } from "../ir/tensor.js";
import type { VisionModelSpec } from "../models/config.js";
import { initWeights, syntheticClip } from "../models/init.js";
import { type CompiledModel, compileVision } from "./compile.js";

/**
 * The main job: compile the vision encoder, give it seeded weights and a synthetic clip,
 * lower it to a backend and time repeated forwards.
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
  readonly onStage?: (stage: RunStage, detail: string) => void;
  readonly onRep?: (done: number, total: number, ms: number) => void;
}

export type RunStage = "compile" | "weights" | "lower" | "warmup" | "run" | "done";

export interface RunResult {
  readonly backend: string;
  readonly backendDetail: string;
  readonly compiled: CompiledModel;
  readonly stageMs: Readonly<Record<"compile" | "weights" | "lower" | "warmup", number>>;
  readonly runMs: readonly number[];
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly peakRssMb: number;
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

export async function runVision(
  spec: VisionModelSpec,
  options: RunOptions = {},
): Promise<RunResult> {
  const reps = options.reps ?? 5;
  const warmup = options.warmup ?? 1;
  if (!(Number.isInteger(reps) && reps >= 1))
    throw new SprigError(`reps must be an integer >= 1, got ${reps}`);
  if (!(Number.isInteger(warmup) && warmup >= 0))
    throw new SprigError(`warmup must be an integer >= 0, got ${warmup}`);
  const stage = options.onStage ?? (() => undefined);
  const backend = await pickBackend(
    options.backend,
    options.kernels === undefined ? {} : { kernels: options.kernels },
  );

  stage("compile", `${spec.frames} frames`);
  let t = performance.now();
  const compiled = compileVision(spec);
  const compileMs = performance.now() - t;

  stage("weights", "seeded weights and a synthetic clip");
  t = performance.now();
  const seed = options.seed ?? 0;
  const weights = initWeights(compiled.graph, seed);
  const inputs = syntheticClip(compiled.graph, seed);
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
      outputs,
    };
  } finally {
    executable.dispose();
  }
}
