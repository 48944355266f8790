/**
 * Every backend variant a cross-backend suite runs over, each with a name and a factory:
 * the reference backend; onnx with each of its lowerings (test/backends/onnx/helpers.ts,
 * VARIANTS); tfjs on cpu and wasm with both attention/token strategies, wasm with and
 * without sprig's WebAssembly kernel (the configurations of test/backends/tfjs/parity.test.ts);
 * gpujs in each engine this machine has (test/backends/gpujs/helpers.ts, MODES: cpu and
 * webasm always, gpu under an X display with headless-gl).
 *
 * Suites declare their cases once and loop over BACKEND_VARIANTS; a backend that cannot run
 * here fails its test instead of being skipped (gpu mode is listed only where it runs).
 */
import type { Backend, Executable } from "../../backends/backend.js";
import { referenceBackend } from "../../backends/reference/index.js";
import { type TfjsKind, tfjsBackend } from "../../backends/tfjs/index.js";
import type { Strategy } from "../../backends/tfjs/types.js";
import type { Graph } from "../../src/ir/graph.js";
import type { HostTensor } from "../../src/ir/tensor.js";
import { gpujsIn, MODES } from "../backends/gpujs/helpers.js";
import { backendFor, VARIANTS as ONNX_VARIANTS } from "../backends/onnx/helpers.js";

export interface BackendVariant {
  /** e.g. "onnx (portable)", "tfjs-wasm (host, sprig kernel)", "gpujs (gpu)". */
  readonly name: string;
  /**
   * Arithmetic of the variant's kernels: float64 (reference, gpu.js cpu mode: float32
   * storage between kernels) or float32 throughout.
   */
  readonly arithmetic: "float64" | "float32";
  readonly create: () => Backend;
}

const TFJS_CONFIGS: readonly [TfjsKind, Strategy, boolean][] = [
  ["cpu", "device", false],
  ["cpu", "host", false],
  ["wasm", "host", true],
  ["wasm", "host", false],
  ["wasm", "device", false],
];

export const BACKEND_VARIANTS: readonly BackendVariant[] = [
  { name: "reference", arithmetic: "float64", create: () => referenceBackend },
  ...ONNX_VARIANTS.map(
    ([label, options]): BackendVariant => ({
      name: `onnx (${label})`,
      arithmetic: "float32",
      create: () => backendFor(options),
    }),
  ),
  ...TFJS_CONFIGS.map(
    ([kind, strategy, sprigKernel]): BackendVariant => ({
      name: `tfjs-${kind} (${strategy}${sprigKernel ? ", sprig kernel" : ""})`,
      arithmetic: "float32",
      create: () => tfjsBackend(kind, { strategy, sprigKernel }),
    }),
  ),
  ...MODES.map(
    (mode): BackendVariant => ({
      name: `gpujs (${mode})`,
      arithmetic: mode === "cpu" ? "float64" : "float32",
      create: () => gpujsIn(mode),
    }),
  ),
];

/** Compiles `graph` on `variant`, runs it once on `inputs`, and disposes the executable. */
export async function runOn(
  variant: BackendVariant,
  graph: Graph,
  weights: ReadonlyMap<string, HostTensor>,
  inputs: Readonly<Record<string, HostTensor>>,
): Promise<Record<string, HostTensor>> {
  const executable: Executable = await variant.create().compile(graph, weights);
  try {
    return await executable.run(inputs);
  } finally {
    executable.dispose();
  }
}
