import { BackendError } from "../src/ir/errors.js";
import type { Backend } from "./backend.js";
import type { LaunchObserver } from "./gpujs/runtime.js";

/**
 * The backends that run in a browser, by name: the browser entry's counterpart of
 * registry.ts, whose loaders reach onnxruntime-node and headless-gl. Each backend is loaded
 * on first use through a dynamic import, so a bundler puts it in a chunk of its own and a
 * page that runs only tfjs never downloads gpu.js or ts-morph. Nothing here reads
 * process.env; every choice is an option.
 */

/**
 * - reference: sprig's interpreter of every op in plain TypeScript (the oracle), slow;
 * - tfjs-webgl: TensorFlow.js on WebGL (loads @tensorflow/tfjs-backend-webgl);
 * - tfjs-wasm: TensorFlow.js on WebAssembly (serve its .wasm files, see `wasmPaths`);
 * - tfjs-cpu: TensorFlow.js's JavaScript kernels;
 * - gpujs: gpu.js kernels generated per node, on WebGL2 (`gpujsMode` "gpu") or in
 *   JavaScript ("cpu") or WebAssembly ("webasm").
 */
export const BROWSER_BACKEND_NAMES = [
  "reference",
  "tfjs-webgl",
  "tfjs-wasm",
  "tfjs-cpu",
  "gpujs",
] as const;

export type BrowserBackendName = (typeof BROWSER_BACKEND_NAMES)[number];

export function isBrowserBackendName(name: string): name is BrowserBackendName {
  return (BROWSER_BACKEND_NAMES as readonly string[]).includes(name);
}

export interface BrowserBackendOptions {
  /**
   * gpujs engine: "auto" (default; WebGL2 with float32 textures where the browser has it,
   * else cpu), "gpu" (WebGL2, an error without it), "cpu" or "webasm".
   */
  readonly gpujsMode?: "auto" | "gpu" | "cpu" | "webasm";
  /** gpujs: called after every kernel launch, e.g. to time kernels (see KernelLaunch). */
  readonly onLaunch?: LaunchObserver;
  /**
   * tfjs-wasm: URL prefix (ending in "/") of TensorFlow.js's .wasm files; default: next to
   * the page's script.
   */
  readonly wasmPaths?: string;
}

async function gpujs(options: BrowserBackendOptions): Promise<Backend> {
  const { compileGpujs } = await import("./gpujs/index.js");
  const mode = options.gpujsMode ?? "auto";
  return {
    name: "gpujs",
    cores: "device",
    description: `gpu.js kernels generated per node (${mode === "auto" ? "WebGL2 where available" : `${mode} mode`})`,
    availability: async () => ({ ok: true, detail: `gpu.js, mode ${mode}` }),
    // debug 0: the Node default reads SPRIG_DEBUG from process.env.
    compile: (graph, weights, compileOptions) =>
      compileGpujs(graph, weights, {
        ...compileOptions,
        mode,
        debug: 0,
        ...(options.onLaunch === undefined ? {} : { onLaunch: options.onLaunch }),
      }),
  };
}

const LOADERS: Readonly<
  Record<BrowserBackendName, (options: BrowserBackendOptions) => Promise<Backend>>
> = {
  reference: async () => (await import("./reference/index.js")).referenceBackend,
  "tfjs-webgl": async () => {
    // The package registers the webgl backend with tfjs when it is imported.
    await import("@tensorflow/tfjs-backend-webgl");
    return (await import("./tfjs/index.js")).tfjsBackend("webgl");
  },
  "tfjs-wasm": async (options) =>
    (await import("./tfjs/index.js")).tfjsBackend(
      "wasm",
      options.wasmPaths === undefined ? {} : { wasmPaths: options.wasmPaths },
    ),
  "tfjs-cpu": async () => (await import("./tfjs/index.js")).tfjsBackend("cpu"),
  gpujs,
};

/** The browser backend `name` (BROWSER_BACKEND_NAMES); an unknown name is a BackendError. */
export async function loadBrowserBackend(
  name: string,
  options: BrowserBackendOptions = {},
): Promise<Backend> {
  if (!isBrowserBackendName(name)) {
    throw new BackendError(
      `unknown browser backend "${name}"; known: ${BROWSER_BACKEND_NAMES.join(", ")}`,
    );
  }
  return LOADERS[name](options);
}
