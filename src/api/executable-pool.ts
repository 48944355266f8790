/**
 * One graph's executable on several worker threads, for work made of independent inputs
 * (the clips of a video collection): each worker lowers the graph once with the same
 * weights and runs one input at a time, so that backends whose run keeps one core busy
 * (Backend.cores "one": tfjs in Node, the reference) use every core. A backend that already
 * uses every core per run (onnx) or a device gains nothing from it, and gets one executable
 * on the calling thread (`workersFor`).
 *
 * Each worker holds its own copy of the weights and its backend's memory; the memory
 * estimate counts them (planRetrieval). Inputs are copied to a worker, or transferred where
 * the caller says they are its own to give; outputs come back as copies. Results are the
 * executable's, bit for bit: the workers run the same backend on the same graph.
 */
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import type { Backend, CompileOptions, Executable } from "../../backends/backend.js";
import type { BackendChoices } from "../../backends/registry.js";
import { BackendError, ConfigError, InputError } from "../ir/errors.js";
import type { Graph } from "../ir/graph.js";
import type { HostTensor } from "../ir/tensor.js";
import type { WeightStore } from "../runtime/weights.js";
import { startModuleWorker } from "../runtime/worker-thread.js";

/** Runs of one graph, on this thread or spread over worker threads. */
export interface ExecutablePool {
  /** Runs that can be in flight at once (the number of executables). */
  readonly size: number;
  /** What runs, and where: the executable's detail, and "on N worker threads". */
  readonly detail: string;
  /**
   * Runs the graph on the least busy executable. With `transfer`, inputs whose buffers are
   * wholly theirs are handed to a worker without a copy, and are unusable afterwards;
   * otherwise they are copied.
   */
  run(
    inputs: Readonly<Record<string, HostTensor>>,
    transfer?: boolean,
  ): Promise<Record<string, HostTensor>>;
  /** Frees every executable and stops the workers. */
  close(): Promise<void>;
}

/** What a worker is given to lower the graph (workerData). */
export interface ExecutableWorkerSetup {
  readonly backend: string;
  readonly choices: BackendChoices;
  readonly graph: Graph;
  readonly weights: WeightStore;
  readonly compile: CompileOptions;
}

export type ExecutableWorkerRequest = {
  readonly id: number;
  readonly inputs: Readonly<Record<string, HostTensor>>;
};

/** An error as data: sprig's user-facing error classes keep their class and fields. */
export type WorkerError = {
  readonly name: string;
  readonly message: string;
  readonly stack: string;
  readonly field?: string;
  readonly detail?: string;
};

export type ExecutableWorkerReply =
  | { readonly type: "ready"; readonly detail: string }
  | { readonly type: "setup-failed"; readonly error: WorkerError }
  | { readonly type: "done"; readonly id: number; readonly outputs: Record<string, HostTensor> }
  | { readonly type: "failed"; readonly id: number; readonly error: WorkerError };

export function workerErrorOf(error: unknown): WorkerError {
  const e = error instanceof Error ? error : new Error(String(error));
  return {
    name: e.name,
    message: e.message,
    stack: e.stack ?? e.message,
    ...(e instanceof ConfigError ? { field: e.field, detail: e.detail } : {}),
  };
}

/** The error again: ConfigError and InputError as themselves, other sprig errors as BackendError. */
export function errorOfWorker(error: WorkerError): Error {
  if (error.name === "ConfigError" && error.field !== undefined && error.detail !== undefined) {
    return new ConfigError(error.field, error.detail);
  }
  if (error.name === "InputError") return new InputError(error.message);
  if (error.name.endsWith("Error") && error.name !== "Error" && isSprigErrorName(error.name)) {
    return new BackendError(error.message);
  }
  const internal = new Error(`executable worker: ${error.message}`);
  internal.stack = `executable worker: ${error.stack}`;
  return internal;
}

const SPRIG_ERRORS = new Set([
  "SprigError",
  "GraphInvariantError",
  "ShapeError",
  "SafetensorsError",
  "WeightError",
  "BackendError",
]);

function isSprigErrorName(name: string): boolean {
  return SPRIG_ERRORS.has(name);
}

/** The buffers of `tensors` that can be transferred: each one wholly its tensor's. */
export function ownBuffers(tensors: Iterable<HostTensor>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const { data } of tensors) {
    const buffer = data.buffer;
    if (
      buffer instanceof ArrayBuffer &&
      data.byteOffset === 0 &&
      data.byteLength === buffer.byteLength
    ) {
      buffers.add(buffer);
    }
  }
  return [...buffers];
}

/**
 * How many executables independent runs should use on `backend`: every core for a
 * one-core backend (never more than there are runs), else 1. `requested` overrides it.
 */
export function workersFor(backend: Backend, runs: number, requested?: number): number {
  if (requested !== undefined) {
    if (!(Number.isSafeInteger(requested) && requested >= 1 && requested <= 64)) {
      throw new ConfigError("workers", `must be an integer in [1, 64], got ${requested}`);
    }
    return requested;
  }
  if (backend.cores !== "one") return 1;
  return Math.max(1, Math.min(availableParallelism(), runs));
}

/** One executable on this thread, as a pool of one. */
export function poolOf(executable: Executable): ExecutablePool {
  return {
    size: 1,
    detail: executable.detail,
    run: (inputs) => executable.run(inputs),
    close: async () => executable.dispose(),
  };
}

/** One worker: its executable, and the runs waiting on it. */
interface Slot {
  readonly worker: Worker;
  readonly pending: Map<
    number,
    { resolve: (outputs: Record<string, HostTensor>) => void; reject: (error: Error) => void }
  >;
  busy: number;
  broken: Error | null;
}

/**
 * `workers` executables of `graph` on worker threads (workers >= 2), each lowered by the
 * backend `setup.backend`; a worker that cannot start or lower the graph is an error here,
 * before any run.
 */
export async function openExecutablePool(
  setup: ExecutableWorkerSetup,
  workers: number,
): Promise<ExecutablePool> {
  const slots: Slot[] = [];
  let detail = "";
  let nextId = 0;
  const stopAll = async () => {
    await Promise.allSettled(slots.map((slot) => slot.worker.terminate()));
  };
  try {
    const ready: Promise<string>[] = [];
    for (let i = 0; i < workers; i++) {
      const launch = startModuleWorker(import.meta.url, "executable-worker", setup);
      if ("why" in launch) {
        throw new BackendError(`cannot run ${setup.backend} on worker threads: ${launch.why}`);
      }
      const slot: Slot = { worker: launch.worker, pending: new Map(), busy: 0, broken: null };
      slots.push(slot);
      ready.push(
        new Promise<string>((resolve, reject) => {
          const fail = (error: Error) => {
            slot.broken ??= error;
            reject(error);
            for (const [id, entry] of slot.pending) {
              slot.pending.delete(id);
              entry.reject(error);
            }
          };
          slot.worker.on("message", (reply: ExecutableWorkerReply) => {
            if (reply.type === "ready") resolve(reply.detail);
            else if (reply.type === "setup-failed") fail(errorOfWorker(reply.error));
            else {
              const entry = slot.pending.get(reply.id);
              slot.pending.delete(reply.id);
              slot.busy--;
              if (reply.type === "done") entry?.resolve(reply.outputs);
              else entry?.reject(errorOfWorker(reply.error));
            }
          });
          slot.worker.on("error", (error) =>
            fail(new Error(`executable worker failed: ${error.message}`)),
          );
          slot.worker.on("exit", (code) =>
            fail(new Error(`executable worker exited (code ${code})`)),
          );
        }),
      );
    }
    const details = await Promise.all(ready);
    detail = `${details[0]}, on ${workers} worker threads`;
  } catch (error) {
    await stopAll();
    throw error;
  }
  return {
    size: workers,
    detail,
    run: (inputs, transfer = false) => {
      const slot = slots.reduce((best, s) => (s.busy < best.busy ? s : best));
      if (slot.broken !== null) return Promise.reject(slot.broken);
      const id = nextId++;
      slot.busy++;
      return new Promise((resolve, reject) => {
        slot.pending.set(id, { resolve, reject });
        slot.worker.postMessage(
          { id, inputs } satisfies ExecutableWorkerRequest,
          transfer ? ownBuffers(Object.values(inputs)) : [],
        );
      });
    },
    close: async () => {
      for (const slot of slots) slot.broken ??= new Error("the executable pool is closed");
      await stopAll();
    },
  };
}
