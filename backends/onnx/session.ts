import { join } from "node:path";
import { BackendError } from "../../src/ir/errors.js";
import type { TensorType } from "../../src/ir/tensor.js";
import type { HostTensor } from "../../src/ir/tensor.js";

/**
 * onnxruntime-node, loaded on first use (it is a large native module), and the conversion
 * between sprig host tensors and ORT tensors.
 */
export type Ort = typeof import("onnxruntime-node");
export type Session = import("onnxruntime-node").InferenceSession;

let loaded: Promise<Ort> | null = null;

export function loadOrt(): Promise<Ort> {
  loaded ??= import("onnxruntime-node").catch((error: unknown) => {
    loaded = null;
    throw new BackendError(
      `onnx: onnxruntime-node cannot be loaded: ${(error as Error).message ?? String(error)}`,
    );
  });
  return loaded;
}

/** Threads for ORT's intra-op pool: CompileOptions.threads, else 2 (the cores here). */
export const DEFAULT_THREADS = 2;

/**
 * A CPU session with all graph optimizations (constant folding, fusions) and a
 * sequential executor: one intra-op pool of `threads` threads does all the work.
 * `memoryArena`: ORT's CPU arena, which keeps freed blocks for reuse (usesMemoryArena in
 * model.ts says when it is turned off). `spinning`: false sets allow_spinning 0, for the
 * staged executable's many sessions, whose idle pools must not hold the cores (index.ts).
 * (ORT's
 * default of spinning pool threads is kept: with other jobs on the machine, turning it
 * off measured 20% faster once and 3% slower once on the 8-frame encoder; inconclusive.)
 */
export async function createSession(
  model: Uint8Array,
  threads: number,
  memoryArena = true,
  spinning = true,
  profilePrefix?: string,
): Promise<Session> {
  const ort = await loadOrt();
  try {
    return await ort.InferenceSession.create(model, {
      executionProviders: ["cpu"],
      graphOptimizationLevel: "all",
      executionMode: "sequential",
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      enableCpuMemArena: memoryArena,
      // Errors only: ORT's warnings (e.g. about its own fusions) are not the user's concern.
      logSeverityLevel: 3,
      ...(profilePrefix === undefined
        ? {}
        : { enableProfiling: true, profileFilePrefix: profilePrefix }),
      ...(spinning && process.env.SPRIG_TRY_SPIN !== "0"
        ? {}
        : { extra: { session: { intra_op: { allow_spinning: "0" } } } }),
    });
  } catch (error) {
    throw new BackendError(
      `onnx: onnxruntime rejected the model: ${(error as Error).message ?? String(error)}`,
    );
  }
}

/**
 * Where onnxruntime's own profiler writes, when asked: the environment variable
 * SPRIG_ONNX_PROFILE names a directory, and every session then writes a Chrome-trace JSON
 * of its runs there (per node: kernel time; per run: model_run) when it is released, named
 * after the graph (`<graph>_<date>.json`). For measuring (bench/throughput.bench.ts), never
 * on by default: profiling costs time itself.
 */
export function profilePrefix(graphName: string): string | undefined {
  const dir = process.env.SPRIG_ONNX_PROFILE;
  if (dir === undefined || dir === "") return undefined;
  return join(dir, graphName.replace(/[^A-Za-z0-9._-]/g, "_"));
}

/** A host tensor as an ORT tensor (no copy: ORT reads the typed array in place). */
export function toOrt(ort: Ort, tensor: HostTensor): import("onnxruntime-node").Tensor {
  return tensor.dtype === "f32"
    ? new ort.Tensor("float32", tensor.data, [...tensor.shape])
    : new ort.Tensor("int32", tensor.data, [...tensor.shape]);
}

/**
 * An ORT output as a host tensor of the sprig type `type`. onnxruntime-node hands CPU
 * outputs back in fresh JS-owned ArrayBuffers (it copies out of ORT's memory), so a typed
 * array that spans its whole buffer is adopted as is; anything else is copied.
 */
export function fromOrt(
  name: string,
  value: import("onnxruntime-node").Tensor,
  type: TensorType,
): HostTensor {
  const shape = [...type.shape];
  const data = value.data;
  const owned = (a: ArrayBufferView): boolean =>
    a.byteOffset === 0 && a.buffer.byteLength === a.byteLength && a.buffer instanceof ArrayBuffer;
  if (type.dtype === "f32" && data instanceof Float32Array) {
    return { dtype: "f32", shape, data: owned(data) ? data : Float32Array.from(data) };
  }
  if (type.dtype === "i32" && data instanceof Int32Array) {
    return { dtype: "i32", shape, data: owned(data) ? data : Int32Array.from(data) };
  }
  throw new BackendError(
    `onnx: output "${name}" came back as ${value.type}, expected ${type.dtype === "f32" ? "float32" : "int32"}`,
  );
}
