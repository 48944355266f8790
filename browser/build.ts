import { copyFile, mkdir, rm, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build, type Plugin } from "esbuild";

/**
 * Bundles the browser page: browser/entry.ts (and everything it imports from src/, passes/
 * and backends/) as one ES module for browsers, plus index.html, into browser/dist/.
 *
 * The project's modules are written for Node first; three kinds of import are redirected so
 * that the bundle runs in a browser and never drags in Node-only code:
 * - backends/gpujs/mode.ts -> shims/gpujs-mode.ts: gpu mode is gpu.js's WebGL2 engine, not
 *   headless-gl;
 * - backends/registry.ts -> shims/registry.ts: its loaders import onnxruntime-node;
 * - node: builtins (imported at the top of files whose Node-only functions the page never
 *   calls, e.g. readSafetensors next to parseSafetensors) -> stubs that throw when called.
 * A Node-only or unwanted package that is still reached (onnxruntime-node, headless-gl...)
 * fails the build, naming the importer. (ts-morph and the TypeScript compiler it carries,
 * about 12 MiB, are in the bundle: the gpujs backend transpiles its generated kernels with
 * them at compile time, backends/gpujs/codegen/kernel.ts.)
 *
 * Run `npx tsx browser/build.ts` to build by hand; the browser tests call buildBrowserBundle.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");

export const DIST_DIR = join(HERE, "dist");

/** Project modules replaced in the browser bundle (absolute .ts paths). */
const REPLACED: ReadonlyMap<string, string> = new Map([
  [join(ROOT, "backends/gpujs/mode.ts"), join(HERE, "shims/gpujs-mode.ts")],
  [join(ROOT, "backends/registry.ts"), join(HERE, "shims/registry.ts")],
]);

/**
 * Packages the bundle must not contain: Node-only (native addons, headless-gl) or never
 * used by the page (the ONNX protobufs). Reaching one is a build error.
 */
const EXCLUDED_PACKAGES = ["onnxruntime-node", "onnx-proto", "gl", "@tensorflow/tfjs-node"];

/**
 * Names the stubs of node: builtins export. A project file importing another name from a
 * builtin fails the build ("No matching export"): add the name here if the page never calls
 * it, else keep that file out of the bundle.
 */
const BUILTIN_EXPORTS: Readonly<Record<string, readonly string[]>> = {
  "node:fs": [
    "existsSync",
    "readFileSync",
    "readdirSync",
    "statSync",
    "writeFileSync",
    // src/io/byte-source.ts's file reads (openFileSource); the page reads bytes in memory.
    "closeSync",
    "constants",
    "fstatSync",
    "openSync",
    "readSync",
  ],
  "node:fs/promises": ["readFile", "readdir", "writeFile", "open", "rename", "rm", "mkdir", "stat"],
  "node:path": ["basename", "dirname", "join", "relative", "resolve", "sep", "extname"],
  "node:module": ["createRequire"],
  "node:crypto": ["randomBytes", "createHash"],
  "node:url": ["fileURLToPath", "pathToFileURL"],
};

function builtinStub(specifier: string): string {
  const names = BUILTIN_EXPORTS[specifier] ?? [];
  const lines = names.map((name) =>
    name === "sep"
      ? `export const sep = "/";`
      : `export function ${name}() { throw new Error(${JSON.stringify(`${specifier} ${name}() is not available in the browser`)}); }`,
  );
  return `${lines.join("\n")}\nexport default {};\n`;
}

function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

const isPackageFile = (path: string) => path.split(sep).includes("node_modules");

const rel = (path: string) => relative(ROOT, path).split(sep).join("/");

/** The redirections and guards described above. */
export const browserPlugin: Plugin = {
  name: "sprig-browser",
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = resolve(args.resolveDir, args.path).replace(/\.js$/, ".ts");
      const replacement = REPLACED.get(target);
      return replacement === undefined ? undefined : { path: replacement };
    });
    b.onResolve({ filter: /^node:/ }, (args) => {
      // Packages map builtins away themselves (package.json "browser" field).
      if (isPackageFile(args.importer)) return undefined;
      if (!(args.path in BUILTIN_EXPORTS)) {
        return {
          errors: [
            { text: `${args.path} (imported by ${rel(args.importer)}) has no browser stub` },
          ],
        };
      }
      return { path: args.path, namespace: "node-builtin-stub" };
    });
    b.onLoad({ filter: /.*/, namespace: "node-builtin-stub" }, (args) => ({
      contents: builtinStub(args.path),
      loader: "js",
    }));
    b.onResolve({ filter: /^[@a-z]/ }, (args) => {
      if (!EXCLUDED_PACKAGES.includes(packageName(args.path))) return undefined;
      return {
        errors: [
          {
            text: `package "${args.path}" reached from ${rel(args.importer)} must stay out of the browser bundle`,
          },
        ],
      };
    });
  },
};

export interface BundleResult {
  readonly outDir: string;
  /** Files written, relative to outDir. */
  readonly files: readonly string[];
  /** Every source file in the bundle, relative to the repository root. */
  readonly inputs: readonly string[];
  readonly bundleBytes: number;
  readonly ms: number;
}

/** Builds browser/dist (or `outDir`): entry.js (+ source map) and index.html. */
export async function buildBrowserBundle(
  options: { outDir?: string; minify?: boolean } = {},
): Promise<BundleResult> {
  const start = performance.now();
  const outDir = options.outDir ?? DIST_DIR;
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const result = await build({
    entryPoints: [join(HERE, "entry.ts")],
    outfile: join(outDir, "entry.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    minify: options.minify ?? false,
    metafile: true,
    logLevel: "silent",
    // Libraries read process.env.NODE_ENV to pick production code paths.
    define: { "process.env.NODE_ENV": '"production"' },
    plugins: [browserPlugin],
  });
  await copyFile(join(HERE, "index.html"), join(outDir, "index.html"));
  const bundleBytes = (await stat(join(outDir, "entry.js"))).size;
  return {
    outDir,
    files: ["entry.js", "entry.js.map", "index.html"],
    inputs: Object.keys(result.metafile.inputs),
    bundleBytes,
    ms: performance.now() - start,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await buildBrowserBundle();
  const mb = (result.bundleBytes / 2 ** 20).toFixed(1);
  console.log(
    `${rel(result.outDir)}: ${result.files.join(", ")} (entry.js ${mb} MiB, ${result.inputs.length} modules, ${Math.round(result.ms)} ms)`,
  );
}
