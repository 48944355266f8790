import type { Executable } from "../backend.js";

/**
 * Where a staged onnx executable's time goes (block-sparse attention in sprig's native
 * kernel between ONNX segments, index.ts openStages), summed over every run since it was
 * compiled. Kept apart from the backend so that the public entry can export the lookup
 * without loading the backend.
 */
export interface StagedProfile {
  /** ONNX segments (one onnxruntime session each) and attention nodes run in the kernel. */
  readonly segments: number;
  readonly hostNodes: number;
  readonly runs: number;
  /**
   * Time in each segment's session.run, summed over runs, in stage order: onnxruntime's
   * own work plus onnxruntime-node's copy of every output into a new JavaScript buffer.
   */
  readonly segmentMs: readonly number[];
  /** Time in each native attention call (inputs checked, kernel, outputs), summed over runs. */
  readonly hostMs: readonly number[];
  /** Bytes of the tensors the segments hand back per run (each one copied out of onnxruntime). */
  readonly crossingBytes: number;
}

const profiles = new WeakMap<Executable, () => StagedProfile>();

/** Records how to read `executable`'s profile (the onnx backend calls this). */
export function recordStagedProfile(executable: Executable, read: () => StagedProfile): void {
  profiles.set(executable, read);
}

/**
 * The profile of an onnx executable that runs in stages (`--kernels on`, or "auto" on an
 * attention-dominated graph); null for any other executable.
 */
export function stagedProfile(executable: Executable): StagedProfile | null {
  return profiles.get(executable)?.() ?? null;
}
