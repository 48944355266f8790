import { BackendError } from "../src/ir/errors.js";
import type { Backend } from "./backend.js";

/**
 * Backends by name, loaded lazily so that using one never loads another's libraries
 * (tfjs, onnxruntime, gpu.js are large and some need native parts).
 */
const LOADERS = {
  reference: async () => (await import("./reference/index.js")).referenceBackend,
  onnx: async () => (await import("./onnx/index.js")).onnxBackend,
  "tfjs-cpu": async () => (await import("./tfjs/index.js")).tfjsBackend("cpu"),
  "tfjs-wasm": async () => (await import("./tfjs/index.js")).tfjsBackend("wasm"),
  // Listed so that the name is known everywhere; available only in a browser bundle.
  "tfjs-webgl": async () => (await import("./tfjs/index.js")).tfjsBackend("webgl"),
  gpujs: async () => (await import("./gpujs/index.js")).gpujsBackend,
} satisfies Record<string, () => Promise<Backend>>;

export type BackendName = keyof typeof LOADERS;

export const BACKEND_NAMES = Object.keys(LOADERS) as BackendName[];

export function isBackendName(name: string): name is BackendName {
  return Object.hasOwn(LOADERS, name);
}

export async function loadBackend(name: string): Promise<Backend> {
  if (!isBackendName(name)) {
    throw new BackendError(
      `unknown backend "${name}"; known backends: ${BACKEND_NAMES.join(", ")}`,
    );
  }
  return LOADERS[name]();
}
