import { BackendError } from "../src/ir/errors.js";
import type { Backend } from "./backend.js";

/**
 * Whether backends run block-sparse attention in sprig's own kernels (backends/native):
 * "auto" as each backend decides (tfjs-wasm always, onnx for attention-dominated graphs),
 * "on" wherever a backend can, "off" never. Backends without such kernels ignore it.
 */
export type KernelChoice = "auto" | "on" | "off";

/** Every KernelChoice, as the CLI's --kernels flag accepts them. */
export const KERNEL_CHOICES: readonly KernelChoice[] = ["auto", "on", "off"];

/** Choices that apply to several backends; each backend reads the ones it has. */
export interface BackendChoices {
  /** Whether to run block-sparse attention in sprig's own kernels; default "auto". */
  readonly kernels?: KernelChoice;
}

const hostAttention = (kernels: KernelChoice | undefined) =>
  kernels === "on" ? true : kernels === "off" ? false : "auto";

/** Every backend's name, in the order error messages list them. */
export const BACKEND_NAMES = [
  "reference",
  "onnx",
  "tfjs-cpu",
  "tfjs-wasm",
  "tfjs-webgl",
  "gpujs",
] as const;

/** A backend's name, as `loadBackend` and the CLI's --backend flag take it. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/**
 * Backends by name, loaded lazily so that using one never loads another's libraries
 * (tfjs, onnxruntime, gpu.js are large and some need native parts), and importing sprig
 * loads none of them: every loader is a dynamic import.
 */
const LOADERS: Readonly<Record<BackendName, (choices: BackendChoices) => Promise<Backend>>> = {
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
};

/** Whether `name` is one of BACKEND_NAMES. */
export function isBackendName(name: string): name is BackendName {
  return Object.hasOwn(LOADERS, name);
}

/**
 * Loads the backend `name` (importing its libraries on first use); an unknown name is a
 * BackendError listing the known ones. Whether the backend can run here is its
 * `availability()`.
 */
export async function loadBackend(name: string, choices: BackendChoices = {}): Promise<Backend> {
  if (!isBackendName(name)) {
    throw new BackendError(
      `unknown backend "${name}"; known backends: ${BACKEND_NAMES.join(", ")}`,
    );
  }
  return LOADERS[name](choices);
}
