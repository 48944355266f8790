import type { Graph } from "../src/ir/graph.js";
import type { HostTensor } from "../src/ir/tensor.js";
import type { WeightStore } from "../src/runtime/weights.js";

/**
 * The backend interface: a backend turns a verified graph plus its weights into an
 * Executable. It lowers every op kind or rejects the graph at compile time with a
 * BackendError naming the node; it never falls back silently to another backend.
 */
export interface Backend {
  readonly name: string;
  readonly description: string;
  /**
   * What one run of an executable keeps busy: "one" core (the reference interpreter, tfjs in
   * Node: its wasm build has no threads there), "all" cores (onnxruntime's intra-op threads),
   * or a "device" (a GPU). Independent inputs, such as the clips of a collection, are spread
   * over executables on worker threads only for "one" (src/api/executable-pool.ts).
   */
  readonly cores: CoreUse;
  /** Whether the backend can run on this machine, and if not, why. */
  availability(): Promise<Availability>;
  compile(graph: Graph, weights: WeightStore, options?: CompileOptions): Promise<Executable>;
}

export type CoreUse = "one" | "all" | "device";

export type Availability =
  | { readonly ok: true; readonly detail: string }
  | { readonly ok: false; readonly reason: string };

export interface CompileOptions {
  /** Intra-op threads for backends that have them (onnx). */
  readonly threads?: number;
}

export interface Executable {
  readonly backend: string;
  readonly graph: Graph;
  /** What actually runs (e.g. "tfjs wasm, SIMD" or "gpu.js cpu mode"). */
  readonly detail: string;
  /** Runs the graph; returns every graph output by name. */
  run(inputs: Readonly<Record<string, HostTensor>>): Promise<Record<string, HostTensor>>;
  /** Frees backend memory. The executable must not be used afterwards. */
  dispose(): void;
}
