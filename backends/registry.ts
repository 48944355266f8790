import { BackendError } from "../src/ir/errors.js";
import type { Backend } from "./backend.js";

/**
 * Whether backends run block-sparse attention in sprig's own kernels (backends/native):
 * "auto" as each backend decides (tfjs-wasm always, onnx for attention-dominated graphs),
 * "on" wherever a backend can, "off" never. Backends without such kernels ignore it.
 */
export type KernelChoice = "auto" | "on" | "off";

export const KERNEL_CHOICES: readonly KernelChoice[] = ["auto", "on", "off"];

export interface BackendChoices {
  readonly kernels?: KernelChoice;
}

const hostAttention = (kernels: KernelChoice | undefined) =>
  kernels === "on" ? true : kernels === "off" ? false : "auto";

/**
 * Backends by name, loaded lazily so that using one never loads another's libraries
 * (tfjs, onnxruntime, gpu.js are large and some need native parts).
 */
const LOADERS = {
  reference: async () => (await import("./reference/index.js")).referenceBackend,
  onnx: async (choices: BackendChoices) =>
    (await import("./onnx/index.js")).createOnnxBackend({
      hostAttention: hostAttention(choices.kernels),
    }),
  "tfjs-cpu": async () => (await import("./tfjs/index.js")).tfjsBackend("cpu"),
  "tfjs-wasm": async (choices: BackendChoices) =>
    (await import("./tfjs/index.js")).tfjsBackend("wasm", {
      sprigKernel: choices.kernels !== "off",
    }),
  // Listed so that the name is known everywhere; available only in a browser bundle.
  "tfjs-webgl": async () => (await import("./tfjs/index.js")).tfjsBackend("webgl"),
  gpujs: async () => (await import("./gpujs/index.js")).gpujsBackend,
} satisfies Record<string, (choices: BackendChoices) => Promise<Backend>>;

export type BackendName = keyof typeof LOADERS;

export const BACKEND_NAMES = Object.keys(LOADERS) as BackendName[];

export function isBackendName(name: string): name is BackendName {
  return Object.hasOwn(LOADERS, name);
}

export async function loadBackend(name: string, choices: BackendChoices = {}): Promise<Backend> {
  if (!isBackendName(name)) {
    throw new BackendError(
      `unknown backend "${name}"; known backends: ${BACKEND_NAMES.join(", ")}`,
    );
  }
  return LOADERS[name](choices);
}
