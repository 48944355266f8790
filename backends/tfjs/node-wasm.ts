import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, sep } from "node:path";
import { NATIVE_DIR } from "../native/paths.js";

/**
 * Node-only: where @tensorflow/tfjs-backend-wasm keeps its .wasm binaries. In Node the wasm
 * backend reads its binary from a file path prefix given to setWasmPaths; the package's main
 * entry (dist/tf-backend-wasm.node.js) sits next to the binaries, so the prefix is that
 * file's folder with a trailing separator.
 *
 * This module imports Node builtins, so platform.ts loads it only when running under Node,
 * through an import() whose specifier is not a literal: browser bundlers leave it out.
 */
export function wasmBinaryDir(): string {
  const require = createRequire(import.meta.url);
  return `${dirname(require.resolve("@tensorflow/tfjs-backend-wasm"))}${sep}`;
}

/**
 * Node-only: the bytes of sprig's own WebAssembly kernels (backends/native/build.ts builds
 * them at install time), or the reason they are not there.
 */
export function sprigKernelBytes(): Uint8Array | string {
  const path = join(NATIVE_DIR, "sprig_bsa.wasm");
  return existsSync(path) ? readFileSync(path) : `${path} is not built (npm run build:native)`;
}
