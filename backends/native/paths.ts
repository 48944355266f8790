import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package root: the nearest folder above this module holding a package.json. That is the
 * checkout when running from sources (backends/native/), and the installed package when
 * running the build (dist/backends/native/, one level deeper), so both find one build/native.
 */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

/** Where backends/native/build.ts writes the compiled kernels: build/native at the package root. */
export const NATIVE_DIR = join(packageRoot(), "build", "native");
