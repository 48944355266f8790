import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Where backends/native/build.ts writes the compiled kernels: build/native at the root. */
export const NATIVE_DIR = join(
  resolve(dirname(fileURLToPath(import.meta.url)), "..", ".."),
  "build",
  "native",
);
