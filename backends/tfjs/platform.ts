import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { WasmBlockSparseAttention } from "../native/wasm.js";

/**
 * Bringing up a tfjs backend. tfjs keeps ONE active backend per process (tf.setBackend is
 * global), so every Executable calls `activate` before it runs; runs are serialised by
 * `exclusive` so that two executables on different tfjs backends never interleave.
 *
 * This module must stay bundleable for browsers (esbuild, platform "browser"): it imports
 * no Node builtins. Node-only setup (the path of the wasm binaries) lives in node-wasm.ts and
 * is loaded through an import() whose specifier is not a literal, which bundlers leave alone
 * and browsers never reach (the Node check guards it).
 */

export type TfjsKind = "cpu" | "wasm" | "webgl" | "webgpu";

export const TFJS_KINDS: readonly TfjsKind[] = ["cpu", "wasm", "webgl", "webgpu"];

/** Packages registering the browser-only backends; loaded on demand, not installed here. */
const BROWSER_BACKEND_PACKAGES: Readonly<Partial<Record<TfjsKind, string>>> = {
  webgl: "@tensorflow/tfjs-backend-webgl",
  webgpu: "@tensorflow/tfjs-backend-webgpu",
};

export interface PlatformOptions {
  /**
   * Prefix (folder URL or path, ending in a separator) of the tfjs wasm binaries. Default: in
   * Node, the installed package's dist folder; in browsers, tfjs's own default (next to the
   * bundle).
   */
  readonly wasmPaths?: string;
}

function isNode(): boolean {
  return typeof process !== "undefined" && typeof process.versions?.node === "string";
}

/** Imports node-wasm.ts in Node; its specifier is not a literal, so bundlers skip it. */
async function nodeHelper(): Promise<typeof import("./node-wasm.js")> {
  const nodeModule = "./node-wasm.js";
  return (await import(nodeModule)) as typeof import("./node-wasm.js");
}

let sprigKernel: Promise<WasmBlockSparseAttention | string> | null = null;

/**
 * sprig's WebAssembly block-sparse attention kernel (backends/native/wasm.ts), loaded once;
 * or why it is not available (not built; in a browser it is not wired up yet).
 */
export function loadSprigKernel(): Promise<WasmBlockSparseAttention | string> {
  sprigKernel ??= (async () => {
    if (!isNode()) return "sprig's WebAssembly kernels are loaded in Node only";
    const bytes = (await nodeHelper()).sprigKernelBytes();
    if (typeof bytes === "string") return bytes;
    try {
      return await WasmBlockSparseAttention.instantiate(bytes);
    } catch (error) {
      return `sprig's WebAssembly kernels failed to load: ${(error as Error).message}`;
    }
  })();
  return sprigKernel;
}

let wasmPathsSet = false;

/** Points the wasm backend at its binaries once, before it first initialises. */
async function prepareWasm(options: PlatformOptions): Promise<void> {
  if (wasmPathsSet || tf.findBackend("wasm") !== null) return;
  let prefix = options.wasmPaths;
  if (prefix === undefined && isNode()) {
    prefix = (await nodeHelper()).wasmBinaryDir();
  }
  if (prefix !== undefined) setWasmPaths(prefix);
  wasmPathsSet = true;
}

/** Registers a browser-only backend's kernels by importing its package, if not yet done. */
async function registerBrowserBackend(kind: TfjsKind): Promise<void> {
  const pkg = BROWSER_BACKEND_PACKAGES[kind];
  if (pkg === undefined || tf.findBackendFactory(kind) !== null) return;
  try {
    await import(pkg);
  } catch (error) {
    throw new Error(
      `tfjs backend "${kind}" is not registered and ${pkg} could not be imported (${error instanceof Error ? error.message : String(error)}); import it before using tfjs-${kind}`,
    );
  }
}

/** Global flags sprig wants on every tfjs backend; set once. */
let flagsSet = false;
function setFlags(): void {
  if (flagsSet) return;
  // Production mode drops tfjs's debug checks and its "use tfjs-node" console banner.
  tf.enableProdMode();
  flagsSet = true;
}

const ready = new Map<TfjsKind, Promise<string>>();

/**
 * Initialises the tfjs backend `kind` (once per process) and makes it the active one.
 * Resolves to a description of what runs, e.g. "tfjs wasm (SIMD, 1 thread)"; rejects with
 * the reason when the backend cannot start here.
 */
export function initialise(kind: TfjsKind, options: PlatformOptions = {}): Promise<string> {
  let pending = ready.get(kind);
  if (pending === undefined) {
    pending = (async () => {
      setFlags();
      if (kind === "wasm") await prepareWasm(options);
      else if (kind in BROWSER_BACKEND_PACKAGES && isNode()) {
        // The package registers its backend only where it finds a browser (no WebGL here).
        throw new Error(
          `runs only in a browser (it needs ${kind === "webgpu" ? "WebGPU" : "WebGL"}); in Node use tfjs-wasm, or run it in Chromium (npm run test:browser; README, "In a browser")`,
        );
      } else await registerBrowserBackend(kind);
      if (tf.findBackendFactory(kind) === null) {
        throw new Error(`tfjs has no "${kind}" backend registered`);
      }
      const ok = await tf.setBackend(kind);
      if (!ok || tf.getBackend() !== kind) {
        throw new Error(`tfjs backend "${kind}" failed to initialise`);
      }
      return describe(kind);
    })();
    ready.set(kind, pending);
    // A failed start may be retried later (e.g. after registering a browser backend).
    pending.catch(() => ready.delete(kind));
  }
  return pending;
}

async function describe(kind: TfjsKind): Promise<string> {
  switch (kind) {
    case "wasm": {
      const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
      const threads = await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT");
      return `tfjs wasm (${simd ? "SIMD" : "no SIMD"}, ${threads ? "multi-threaded" : "1 thread"})`;
    }
    case "cpu":
      return "tfjs cpu (plain JavaScript kernels)";
    case "webgl":
      return `tfjs webgl (WebGL ${tf.env().getNumber("WEBGL_VERSION")})`;
    case "webgpu":
      return "tfjs webgpu";
    default:
      return kind satisfies never;
  }
}

/** Makes `kind` the active tfjs backend (initialising it on first use). */
export async function activate(kind: TfjsKind, options: PlatformOptions = {}): Promise<void> {
  await initialise(kind, options);
  if (tf.getBackend() !== kind && !(await tf.setBackend(kind))) {
    throw new Error(`tfjs backend "${kind}" could not be re-activated`);
  }
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs `task` after every task queued before it has settled: tfjs's active backend is
 * process-global, so runs on different tfjs backends must not interleave at await points.
 */
export function exclusive<T>(task: () => Promise<T>): Promise<T> {
  const result = queue.then(task, task);
  queue = result.catch(() => undefined);
  return result;
}
