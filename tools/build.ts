/**
 * `npm run build`: what the package ships, in dist/ (see package.json "exports" and "files").
 *
 * 1. tsc -p tsconfig.build.json: the library, CLI and backends (src/, passes/, backends/) as
 *    ES modules with declarations and source maps (sources inlined, as the .ts files are not
 *    shipped), under dist/ in the same layout. TypeScript 7's tsc emits JavaScript and
 *    declarations itself, in about a second, so no second compiler is involved.
 * 2. The C sources of sprig's kernels next to the compiled build script
 *    (dist/backends/native/), which the installed package's postinstall (bin/postinstall.js)
 *    compiles on the user's machine into build/native/; nothing machine-specific ships.
 * 3. The browser entry (src/browser.ts) bundled by esbuild into dist/browser/: sprig's own
 *    modules inlined with the page build's redirections (browser/build.ts: gpu.js on WebGL2,
 *    no backend registry, node: builtins stubbed, process.env empty), every package left as
 *    an import for the user's bundler, and each backend a chunk of its own, loaded on first
 *    use.
 *
 *   npx tsx tools/build.ts
 */
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, readdir, rm, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { browserPlugin } from "../browser/build.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(ROOT, "dist");

/** What the build writes (dist/docs, from `npm run docs`, is left alone). */
const OUTPUTS = ["src", "passes", "backends", "browser"];

/** The browser entry's output: the module "sprig/browser" resolves to, and its chunks. */
export const BROWSER_DIST = join(DIST, "browser");

/** Runs tsc; false when it reported errors (printed above). */
function compileTypeScript(): boolean {
  const tsc = join(ROOT, "node_modules", ".bin", "tsc");
  try {
    execFileSync(tsc, ["-p", join(ROOT, "tsconfig.build.json")], { stdio: "inherit" });
    return true;
  } catch {
    return false;
  }
}

async function copyNativeSources(): Promise<string[]> {
  const from = join(ROOT, "backends", "native");
  const to = join(DIST, "backends", "native");
  const sources = (await readdir(from)).filter((f) => f.endsWith(".c") || f.endsWith(".h"));
  await mkdir(to, { recursive: true });
  for (const file of sources) await copyFile(join(from, file), join(to, file));
  return sources;
}

async function bundleBrowserEntry(): Promise<{ files: string[]; bytes: number }> {
  const result = await build({
    entryPoints: { sprig: join(ROOT, "src", "browser.ts") },
    outdir: BROWSER_DIST,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    packages: "external",
    chunkNames: "chunks/[name]-[hash]",
    metafile: true,
    logLevel: "warning",
    // sprig's own modules read a few variables (SPRIG_DEBUG, SPRIG_GPUJS_MODE) with Node
    // defaults; in a browser they see an empty environment instead of a missing `process`.
    define: { "process.env": "{}" },
    plugins: [browserPlugin],
  });
  const files = Object.keys(result.metafile.outputs).map((f) => relative(BROWSER_DIST, f));
  let bytes = 0;
  for (const file of files) bytes += (await stat(join(BROWSER_DIST, file))).size;
  return { files, bytes };
}

export async function buildPackage(): Promise<void> {
  const start = performance.now();
  for (const dir of OUTPUTS) await rm(join(DIST, dir), { recursive: true, force: true });
  if (!compileTypeScript()) {
    console.error("build: tsc reported errors (above); dist/ is incomplete");
    process.exitCode = 1;
    return;
  }
  const native = await copyNativeSources();
  const browser = await bundleBrowserEntry();
  const chunks = browser.files.filter((f) => f.endsWith(".js")).length;
  const mib = (browser.bytes / 2 ** 20).toFixed(1);
  console.log(
    `dist/: tsc output, ${native.length} C sources, browser entry (${chunks} modules, ${mib} MiB with maps) in ${((performance.now() - start) / 1000).toFixed(1)} s`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await buildPackage();
}
