import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from "../../browser/session.js";
import { startServer } from "../../browser/server.js";
import { compileVision } from "../../src/api/compile.js";
import { visionPreset } from "../../src/models/presets.js";
import { VERSION } from "../../src/version.js";

/**
 * sprig as users get it. The checkout (its sources, not its dist/) is copied, built with
 * `npm run build` and packed with `npm pack`; the tarball is installed into a fresh project
 * with `npm install --offline` from the npm cache that `npm ci` filled (CI's machine reaches
 * only the npm registry; npm 11's `npm ci` caches each package's tarball and its install
 * metadata document, which is all an offline install needs: a cache filled otherwise, e.g.
 * by an older npm, may lack the metadata, and `npm ci` once fills it). The fresh project
 * starts from the checkout's package-lock.json, so every dependency resolves to the version
 * tested here, whose tarball is in the cache. Its package.json approves the install
 * scripts it runs (sprig's kernel build, esbuild, protobufjs) and denies onnxruntime-node's
 * (a download from outside the registry) and headless-gl's (a long native build that this
 * test does not need): no install warning is left.
 *
 * In that project: the README's library example, verbatim, as a Node ES module; a TypeScript
 * program type-checked by tsc under moduleResolution nodenext and bundler (sprig's
 * declarations included) and run; `npx sprig` (--version, run, report) with tsx nowhere in
 * the project; what importing "sprig" loads; and a page bundled from "sprig/browser" by
 * esbuild, run in headless Chromium against a conformance case on three backends.
 */

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CONFORMANCE = fileURLToPath(new URL("../../../shared/conformance/", import.meta.url));

/** What `npm pack` needs from the checkout; dist/ and node_modules/ are not copied. */
const PACK_SOURCES = [
  "package.json",
  "package-lock.json",
  ".npmrc",
  "README.md",
  "CHANGELOG.md",
  "tsconfig.json",
  "tsconfig.build.json",
  "bin",
  "src",
  "passes",
  "backends",
  "browser",
  "tools",
];

/** Packages the main entry must not load on import (each backend loads its own on use). */
const HEAVY = [
  "onnxruntime-node",
  "onnxruntime-common",
  "onnx-proto",
  "protobufjs",
  "gpu.js",
  "gl",
  "ts-morph",
  "@ts-morph/common",
  "@tensorflow/tfjs-core",
  "@tensorflow/tfjs-backend-cpu",
  "@tensorflow/tfjs-backend-wasm",
  "@tensorflow/tfjs-backend-webgl",
  "commander",
  "cli-progress",
];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * The environment of a user's shell: this process's, less npm's per-script variables (the
 * suite may run under `npm test`) and sprig's debug switch.
 */
function userEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && key !== "SPRIG_DEBUG" && key !== "INIT_CWD") env[key] = value;
  }
  return { ...env, ...extra };
}

function exec(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv = userEnv(),
): Promise<Run> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code, stdout, stderr, ms: Math.round(performance.now() - start) }),
    );
  });
}

/** Runs a command that must succeed; its output goes into the failure message otherwise. */
async function ok(command: string, args: readonly string[], cwd: string): Promise<Run> {
  const run = await exec(command, args, cwd);
  const what = `${command} ${args.join(" ")} (in ${cwd})`;
  expect(run.code, `${what}\n${run.stdout}\n${run.stderr}`).toBe(0);
  return run;
}

/** The first ```js block of the README's "Use it as a library" section. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const section = readme.split("\n## Use it as a library\n")[1];
  expect(section, 'README.md has no "## Use it as a library" section').toBeDefined();
  const block = /```js\n([\s\S]*?)```/.exec(section!.split("\n## ")[0]!);
  expect(block, "no ```js block in the library section").not.toBeNull();
  return block![1]!;
}

interface PackedFile {
  readonly path: string;
  readonly size: number;
}

interface Packed {
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly entryCount: number;
  readonly files: readonly PackedFile[];
}

let work = "";
let app = "";
let packed: Packed;
let installRun: Run;
let lockVersions: Readonly<Record<string, string>> = {};

/** The version the checkout's lockfile holds for `name` (a dev tool the fresh project uses). */
function locked(name: string): string {
  const version = lockVersions[name];
  expect(version, `${name} in package-lock.json`).toBeDefined();
  return version!;
}

async function packTarball(): Promise<Packed> {
  const source = join(work, "sprig");
  await mkdir(source);
  for (const entry of PACK_SOURCES) {
    await cp(join(ROOT, entry), join(source, entry), {
      recursive: true,
      filter: (path) => !/[/\\](node_modules|dist|\.tmp)$/.test(path),
    });
  }
  await symlink(join(ROOT, "node_modules"), join(source, "node_modules"), "dir");
  await ok("npm", ["run", "--silent", "build"], source);
  // The build ran just above, as `prepare` would; --ignore-scripts keeps stdout pure JSON.
  const pack = await ok(
    "npm",
    ["pack", "--json", "--ignore-scripts", "--pack-destination", work],
    source,
  );
  const [result] = JSON.parse(pack.stdout) as Packed[];
  return result!;
}

async function writeProject(tarball: string): Promise<void> {
  const spec = `file:${tarball}`;
  await mkdir(app);
  const manifest = {
    name: "sprig-install-check",
    private: true,
    type: "module",
    dependencies: { sprig: spec },
    devDependencies: {
      "@types/node": locked("@types/node"),
      esbuild: locked("esbuild"),
      typescript: locked("typescript"),
    },
    allowScripts: {
      [spec]: true,
      esbuild: true,
      protobufjs: true,
      "onnxruntime-node": false,
      gl: false,
    },
  };
  await writeFile(join(app, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  await cp(join(ROOT, "package-lock.json"), join(app, "package-lock.json"));
  await writeFile(join(app, "page.ts"), PAGE);
}

beforeAll(async () => {
  const lock = JSON.parse(await readFile(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version?: string }>;
  };
  lockVersions = Object.fromEntries(
    Object.entries(lock.packages)
      .filter(([path, entry]) => path.startsWith("node_modules/") && entry.version !== undefined)
      .map(([path, entry]) => [path.slice("node_modules/".length), entry.version!]),
  );
  work = await mkdtemp(join(tmpdir(), "sprig-package-"));
  app = join(work, "app");
  packed = await packTarball();
  await writeProject(join(work, packed.filename));
  // The cache of the npm running this suite (under `npm test`, npm_config_cache says which).
  const cache = (await exec("npm", ["config", "get", "cache"], ROOT, process.env)).stdout.trim();
  installRun = await exec(
    "npm",
    ["install", "--offline", "--cache", cache, "--no-audit", "--no-fund"],
    app,
  );
  console.log(
    `npm pack: ${packed.filename}, ${(packed.size / 2 ** 20).toFixed(2)} MiB packed, ${(packed.unpackedSize / 2 ** 20).toFixed(2)} MiB unpacked, ${packed.entryCount} files; npm install --offline: ${installRun.ms} ms`,
  );
}, 600_000);

afterAll(async () => {
  if (work !== "") await rm(work, { recursive: true, force: true });
});

describe("the tarball", () => {
  it("holds the built package, the launcher, README and CHANGELOG; no sources, tests or benchmarks", async () => {
    const paths = packed.files.map((f) => f.path);
    for (const needed of [
      "package.json",
      "README.md",
      "CHANGELOG.md",
      "bin/sprig.js",
      "bin/postinstall.js",
      "dist/src/index.js",
      "dist/src/index.d.ts",
      "dist/src/index.js.map",
      "dist/src/browser.d.ts",
      "dist/src/cli/main.js",
      "dist/browser/sprig.js",
      "dist/backends/native/build.js",
      "dist/backends/native/bsa.c",
      "dist/backends/native/bsa.h",
    ]) {
      expect(paths, needed).toContain(needed);
    }
    const unwanted = paths.filter(
      (p) =>
        /^(test|bench|examples|tools|src|passes|backends|browser|build|node_modules)\//.test(p) ||
        p.startsWith("dist/docs/") ||
        (p.endsWith(".ts") && !p.endsWith(".d.ts")),
    );
    expect(unwanted).toEqual([]);
    // Every target of "exports" and "bin" ships.
    const manifest = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
      exports: Record<string, string | Record<string, string>>;
      bin: Record<string, string>;
    };
    const targets = Object.values(manifest.exports).flatMap((t) =>
      typeof t === "string" ? [t] : Object.values(t),
    );
    for (const target of [...targets, ...Object.values(manifest.bin)]) {
      expect(paths, target).toContain(target.replace(/^\.\//, ""));
    }
    expect(packed.size).toBeLessThan(2.5 * 2 ** 20);
  });

  it("installs offline from the npm cache with no warning, and builds sprig's kernels", async () => {
    expect(installRun.code, installRun.stdout + installRun.stderr).toBe(0);
    expect(installRun.stderr).not.toMatch(/npm (warn|error)/);
    const native = join(app, "node_modules/sprig/build/native");
    if (process.env.SPRIG_REQUIRE_NATIVE === "1") {
      expect(existsSync(join(native, "sprig_native.node")), native).toBe(true);
      expect(existsSync(join(native, "sprig_bsa.wasm")), native).toBe(true);
    }
  });
});

describe.sequential("in the fresh project", () => {
  it("tsx is nowhere: not installed, not a dependency, not resolvable", async () => {
    expect(existsSync(join(app, "node_modules/tsx"))).toBe(false);
    const installed = JSON.parse(
      await readFile(join(app, "node_modules/sprig/package.json"), "utf8"),
    ) as Record<string, Record<string, string> | undefined>;
    for (const field of ["dependencies", "optionalDependencies", "peerDependencies"]) {
      expect(Object.keys(installed[field] ?? {}), field).not.toContain("tsx");
    }
    const require = createRequire(join(app, "package.json"));
    expect(() => require.resolve("tsx")).toThrow();
  });

  it("runs the README's library example verbatim", async () => {
    await writeFile(join(app, "example.mjs"), await readmeExample());
    const run = await ok("node", ["example.mjs"], app);
    const { cost } = compileVision(visionPreset(2));
    const tokens = cost.layers.at(-1)!.tokensOut;
    expect(run.stdout).toContain(`total: ${(cost.totals.macs / 1e9).toFixed(2)} GMAC`);
    expect(run.stdout).toMatch(
      new RegExp(`\\n[a-z-]+: [\\d.]+ ms per forward, output 1 x ${tokens} x 768\\n$`),
    );
    expect(run.stderr).toBe("");
  });

  it("type-checks a TypeScript program under nodenext and bundler resolution, and runs it", async () => {
    await writeFile(
      join(app, "typed.ts"),
      `import {
  type Backend,
  type CompiledModel,
  compileVision,
  formatCostTable,
  initWeights,
  loadBackend,
  MODELS,
  type VisionModelSpec,
  visionPreset,
} from "sprig";
import { main } from "sprig/cli";

const spec: VisionModelSpec = visionPreset(2);
const compiled: CompiledModel<VisionModelSpec> = compileVision(spec);
console.log(formatCostTable(compiled.cost));
const backend: Backend = await loadBackend("tfjs-wasm");
const executable = await backend.compile(compiled.graph, initWeights(compiled.graph, 0));
const outputs = await executable.run(MODELS.vision.syntheticInputs(compiled.graph, spec, 0));
executable.dispose();
const hidden = outputs.last_hidden_state;
if (hidden === undefined) throw new Error("no last_hidden_state");
const finite = Array.from(hidden.data).every(Number.isFinite);
console.log(\`\${backend.name}: last_hidden_state [\${hidden.shape.join(", ")}], finite \${finite}\`);
process.exitCode = await main(["report", "--frames", "2", "--json"]);
`,
    );
    const common = { target: "es2022", strict: true, skipLibCheck: false, types: ["node"] };
    await writeFile(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          ...common,
          module: "nodenext",
          moduleResolution: "nodenext",
          outDir: "out",
        },
        files: ["typed.ts"],
      }),
    );
    await writeFile(
      join(app, "tsconfig.bundler.json"),
      JSON.stringify({
        compilerOptions: {
          ...common,
          module: "esnext",
          moduleResolution: "bundler",
          lib: ["es2022", "dom"],
          noEmit: true,
        },
        files: ["typed.ts", "page.ts"],
      }),
    );
    await ok("npx", ["tsc", "-p", "tsconfig.json"], app);
    await ok("npx", ["tsc", "-p", "tsconfig.bundler.json"], app);
    const run = await ok("node", ["out/typed.js"], app);
    const { cost } = compileVision(visionPreset(2));
    const tokens = cost.layers.at(-1)!.tokensOut;
    expect(run.stdout).toContain(`tfjs-wasm: last_hidden_state [1, ${tokens}, 768], finite true`);
    const report = JSON.parse(run.stdout.slice(run.stdout.indexOf("\n{") + 1)) as {
      frames: number;
      totals: { macs: number };
    };
    expect(report.frames).toBe(2);
    expect(report.totals.macs).toBe(cost.totals.macs);
  });

  it("npx sprig: --version, run and report, with nothing on stderr (no npm warning)", async () => {
    const version = await ok("npx", ["sprig", "--version"], app);
    expect(version.stdout).toBe(`${VERSION}\n`);
    expect(version.stderr).toBe("");
    const run = await ok(
      "npx",
      ["sprig", "run", "--frames", "2", "--layers", "2", "--reps", "1"],
      app,
    );
    expect(run.stderr).toBe("");
    expect(run.stdout).toMatch(/vision encoder, 2 frames, on [a-z-]+ /);
    expect(run.stdout).toMatch(/\nforward: median [\d.]+ ms /);
    const report = await ok("npx", ["sprig", "report", "--frames", "2", "--json"], app);
    expect(report.stderr).toBe("");
    expect((JSON.parse(report.stdout) as { frames: number }).frames).toBe(2);
    console.log(`npx sprig --version: ${version.ms} ms; npx sprig run: ${run.ms} ms`);
  });

  it('importing "sprig" loads no backend library, CLI library or native part', async () => {
    const hook = `data:text/javascript,${encodeURIComponent(
      'export async function resolve(s, c, next) { const r = await next(s, c); process.stderr.write("resolved " + r.url + "\\n"); return r; }',
    )}`;
    const register = `data:text/javascript,${encodeURIComponent(
      `import { register } from "node:module"; register(${JSON.stringify(hook)});`,
    )}`;
    const script =
      'const t = performance.now(); await import("sprig"); console.log(JSON.stringify({ ms: performance.now() - t, rssMiB: process.memoryUsage().rss / 2 ** 20 }));';
    const run = await ok("node", ["--import", register, "--input-type=module", "-e", script], app);
    const packages = new Set(
      [...run.stderr.matchAll(/\/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)].map((m) => m[1]!),
    );
    expect([...packages].filter((p) => HEAVY.includes(p))).toEqual([]);
    expect(packages.has("sprig")).toBe(true);
    const measured = JSON.parse(run.stdout) as { ms: number; rssMiB: number };
    console.log(
      `import "sprig": ${measured.ms.toFixed(0)} ms, RSS ${measured.rssMiB.toFixed(0)} MiB, packages ${[...packages].sort().join(", ")}`,
    );
  });

  it('a page bundled from "sprig/browser" by esbuild runs in headless Chromium', async () => {
    requireChromium();
    const www = join(app, "www");
    await mkdir(www);
    const bundle = await ok(
      "npx",
      [
        "esbuild",
        "page.ts",
        "--bundle",
        "--format=esm",
        "--platform=browser",
        "--target=es2022",
        "--outfile=www/page.js",
        "--log-level=warning",
      ],
      app,
    );
    expect(bundle.stderr).toBe("");
    await writeFile(
      join(www, "index.html"),
      '<!doctype html><meta charset="utf-8"><title>sprig</title><script type="module" src="page.js"></script>\n',
    );
    const server = await startServer({ distDir: www, casesDir: CONFORMANCE, caseFolders: [] });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const log: string[] = [];
    try {
      const page = await browser.newPage();
      page.on("console", (m) => log.push(`console.${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => log.push(`pageerror: ${e.message}`));
      await page.goto(server.url);
      await page.waitForFunction(
        () => (globalThis as { __outcome?: { done: boolean } }).__outcome?.done === true,
        null,
        { timeout: 300_000 },
      );
      const outcome = (await page.evaluate(
        () => (globalThis as { __outcome?: unknown }).__outcome,
      )) as PageOutcome;
      expect(outcome.error, log.join("\n")).toBeNull();
      expect(outcome.version).toBe(VERSION);
      expect(outcome.macs).toBe(compileVision(visionPreset(2)).cost.totals.macs);
      for (const backend of ["reference", "tfjs-webgl", "gpujs"]) {
        expect(outcome.cases[backend], `${backend}: ${JSON.stringify(outcome.cases)}`).toEqual({
          passed: true,
          detail: expect.any(String),
        });
      }
    } finally {
      await browser.close();
      await server.close();
    }
  });
});

interface PageOutcome {
  readonly version: string;
  readonly macs: number | null;
  readonly cases: Record<string, { passed: boolean; detail: string }>;
  readonly error: string | null;
}

/** The page: compile the 2-frame encoder, then run one conformance case on three backends. */
const PAGE = `import { caseFromBytes, compileVision, loadBrowserBackend, runCase, VERSION, visionPreset } from "sprig/browser";

interface Outcome {
  version: string;
  macs: number | null;
  cases: Record<string, { passed: boolean; detail: string }>;
  error: string | null;
  done: boolean;
}

const outcome: Outcome = { version: VERSION, macs: null, cases: {}, error: null, done: false };
(globalThis as { __outcome?: Outcome }).__outcome = outcome;
try {
  outcome.macs = compileVision(visionPreset(2)).cost.totals.macs;
  const name = "c1_layer_sparse_keep07";
  const [sidecar, bytes] = await Promise.all([
    fetch(\`cases/\${name}.json\`).then((r) => r.text()),
    fetch(\`cases/\${name}.safetensors\`).then((r) => r.arrayBuffer()),
  ]);
  const testCase = caseFromBytes(name, sidecar, new Uint8Array(bytes));
  for (const backend of ["reference", "tfjs-webgl", "gpujs"]) {
    const result = await runCase(testCase, await loadBrowserBackend(backend));
    const detail = result.error ?? result.checks.map((c) => \`\${c.name}: \${c.detail}\`).join("; ");
    outcome.cases[backend] = { passed: result.passed, detail };
  }
} catch (error) {
  outcome.error = error instanceof Error ? \`\${error.name}: \${error.message}\\n\${error.stack}\` : String(error);
}
outcome.done = true;
`;
