import { BackendError } from "../../src/ir/errors.js";
import type { Backend } from "../../backends/backend.js";

/**
 * Browser stand-in for backends/registry.ts, swapped in by the bundler (build.ts). The
 * registry's loaders import Node-only backends (onnxruntime-node, headless-gl); in the
 * browser bundle the page builds its backends itself (browser/backends.ts), so nothing may
 * load a backend by name. Modules that import the registry for other reasons (src/api/run.ts
 * for `median`, via src/api/attention-bench.ts) still bundle.
 */

export type BackendName = never;

export const BACKEND_NAMES: BackendName[] = [];

export function isBackendName(_name: string): _name is BackendName {
  return false;
}

export async function loadBackend(name: string): Promise<Backend> {
  throw new BackendError(
    `backend "${name}": the backend registry is not available in the browser bundle (see browser/backends.ts)`,
  );
}
