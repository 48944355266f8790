import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { Command } from "commander";
import { GPU } from "gpu.js";
import { afterAll, describe, expect, it } from "vitest";
import { emitModule } from "../../../backends/gpujs/codegen/module.js";
import { runReference } from "../../../backends/reference/index.js";
import { compileVision } from "../../../src/api/compile.js";
import { registerEmit, writeModuleFiles } from "../../../src/cli/commands/emit.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import { initWeights, syntheticClip } from "../../../src/models/init.js";
import { visionPreset } from "../../../src/models/presets.js";
import { expectTensorClose, GL, smallSpec } from "./helpers.js";

const run = promisify(execFile);

/**
 * The standalone module: it type-checks with tsc under strict settings on its own (gpu.js is
 * its only import), runs without sprig, and matches the reference, for a small encoder (in
 * gpu.js's cpu engine) and for the 8-frame SViTT encoder (in its headless-gl engine, where
 * that runs). `sprig emit` writes it all or nothing.
 */

/** Scratch space inside the checkout (gitignored), so the module resolves gpu.js. */
const SCRATCH = fileURLToPath(
  new URL(`../../../.tmp/gpujs-emit-${randomBytes(4).toString("hex")}/`, import.meta.url),
);

afterAll(async () => {
  await rm(SCRATCH, { recursive: true, force: true });
});

async function writeModule(name: string, files: ReadonlyMap<string, string>): Promise<string> {
  const dir = join(SCRATCH, name);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of files) await writeFile(join(dir, file), text);
  return dir;
}

/** The strict compiler options the emitted module must satisfy (tsconfig.json form). */
const STRICT = {
  target: "ES2022",
  lib: ["ES2023"],
  module: "NodeNext",
  moduleResolution: "NodeNext",
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  noUnusedLocals: true,
  noUnusedParameters: true,
  noImplicitReturns: true,
  noImplicitOverride: true,
  noPropertyAccessFromIndexSignature: true,
  verbatimModuleSyntax: true,
  skipLibCheck: true,
  noEmit: true,
  types: [],
};

const TSC = fileURLToPath(new URL("../../../node_modules/typescript/bin/tsc", import.meta.url));

/**
 * Type-checks a module directory on its own with the project's tsc (a tsconfig.json with
 * STRICT, and package.json "type": "module" so NodeNext treats the files as ES modules).
 * Returns tsc's diagnostics, empty when it passes.
 */
async function typeCheck(dir: string): Promise<string> {
  await writeFile(join(dir, "package.json"), '{ "type": "module" }\n');
  await writeFile(
    join(dir, "tsconfig.json"),
    `${JSON.stringify({ compilerOptions: STRICT, include: ["*.ts"] }, null, 2)}\n`,
  );
  try {
    await run(process.execPath, [TSC, "-p", join(dir, "tsconfig.json")], { cwd: dir });
    return "";
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    return `${stdout ?? ""}${stderr ?? ""}` || String(error);
  }
}

/** What the tests use of an emitted module's index.ts. */
interface EmittedRun {
  run(
    gpu: GPU,
    weights: Record<string, Float32Array | Int32Array>,
    inputs: Record<string, Float32Array>,
  ): Record<string, Float32Array | Int32Array>;
  readonly WEIGHTS: Record<string, unknown>;
}

/** sprig weights as the module takes them: state_dict key -> typed array. */
function plainOf(
  weights: ReadonlyMap<string, HostTensor>,
): Record<string, Float32Array | Int32Array> {
  return Object.fromEntries([...weights].map(([name, t]) => [name, t.data]));
}

function plainInputs(inputs: Readonly<Record<string, HostTensor>>): Record<string, Float32Array> {
  return Object.fromEntries(
    Object.entries(inputs).map(([name, t]) => [name, t.data as Float32Array]),
  );
}

/** A module output as a host tensor of the reference output's shape. */
function hostOf(data: Float32Array | Int32Array, shape: readonly number[]): HostTensor {
  return data instanceof Int32Array
    ? { dtype: "i32", shape: [...shape], data }
    : { dtype: "f32", shape: [...shape], data };
}

describe("emitModule for a small SViTT encoder", () => {
  const compiled = compileVision(smallSpec("reference", true, { batch: 2, blockSize: 6 }));
  const emitted = emitModule(compiled);

  it("writes kernels.ts, model.ts, index.ts and a README; imports only gpu.js", () => {
    expect([...emitted.files.keys()].sort()).toEqual([
      "README.md",
      "index.ts",
      "kernels.ts",
      "model.ts",
    ]);
    for (const [name, text] of emitted.files) {
      if (!name.endsWith(".ts")) continue;
      const imports = [...text.matchAll(/from "([^"]+)"/g)].map((m) => m[1]);
      expect(
        imports.every((spec) => spec === "gpu.js" || spec!.startsWith("./")),
        name,
      ).toBe(true);
    }
  });

  it("type-checks under strict settings and runs without sprig, matching the reference", async () => {
    const dir = await writeModule("small", emitted.files);
    expect(await typeCheck(dir)).toBe("");
    const module = (await import(pathToFileURL(join(dir, "index.ts")).href)) as EmittedRun;
    const { graph } = compiled;
    const weights = initWeights(graph, 3);
    const inputs = syntheticClip(graph, 3);
    expect(Object.keys(module.WEIGHTS).sort()).toEqual([...weights.keys()].sort());
    const gpu = new GPU({ mode: "cpu" });
    const got = module.run(gpu, plainOf(weights), plainInputs(inputs));
    await gpu.destroy();
    const want = runReference(graph, weights, inputs);
    for (const [name, tensor] of Object.entries(want)) {
      expectTensorClose(name, hostOf(got[name]!, tensor.shape), tensor, 1e-5, 1e-5);
    }
  });
});

describe("emitModule for the 8-frame SViTT encoder", () => {
  const compiled = compileVision(visionPreset(8));
  const emitted = emitModule(compiled);

  it("type-checks with tsc", async () => {
    expect(emitted.program.kernels.length).toBeGreaterThan(50);
    const dir = await writeModule("svitt8", emitted.files);
    expect(await typeCheck(dir)).toBe("");
  });

  /**
   * About four minutes: 86 GMAC on the reference backend (~90 s) and on gpu.js's headless-gl
   * engine (~130 s); gpu.js's cpu engine would take about seven, so this runs where
   * headless-gl does (CI requires it). Float32 through 12 layers: 1e-3, ten times the
   * per-layer parity tolerance of gpu mode (toleranceFor); kept token indices exactly.
   */
  it.runIf(GL.ok)(
    "runs in gpu mode without sprig and matches the reference on a seeded clip",
    async () => {
      const dir = await writeModule("svitt8-run", emitted.files);
      const module = (await import(pathToFileURL(join(dir, "index.ts")).href)) as EmittedRun;
      const { graph } = compiled;
      const weights = initWeights(graph, 5);
      const inputs = syntheticClip(graph, 5);
      const gpu = new GPU({ mode: "headlessgl" });
      let got: Record<string, Float32Array | Int32Array>;
      try {
        got = module.run(gpu, plainOf(weights), plainInputs(inputs));
      } finally {
        await gpu.destroy();
      }
      const want = runReference(graph, weights, inputs);
      for (const [name, tensor] of Object.entries(want)) {
        expectTensorClose(name, hostOf(got[name]!, tensor.shape), tensor, 1e-3, 1e-3);
      }
    },
    900_000,
  );
});

describe("sprig emit", () => {
  const config = {
    model: {
      hiddenSize: 32,
      numHeads: 2,
      numLayers: 2,
      intermediateSize: 64,
      imageSize: 32,
      patchSize: 8,
    },
    sparsity: { attention: { blockSize: 8, random: 1 }, tokens: { keepRate: 0.7, dropAfter: [0] } },
  };

  async function emit(args: string[]): Promise<string> {
    const configPath = join(SCRATCH, "config.json");
    await mkdir(SCRATCH, { recursive: true });
    await writeFile(configPath, JSON.stringify(config));
    const program = new Command().exitOverride();
    registerEmit(program);
    let stdout = "";
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      stdout += chunk;
      return true;
    }) as typeof process.stdout.write;
    try {
      await program.parseAsync(["emit", "--frames", "2", "--config", configPath, ...args], {
        from: "user",
      });
    } finally {
      process.stdout.write = write;
    }
    return stdout;
  }

  it("writes the module into a new directory", async () => {
    const out = join(SCRATCH, "cli-new");
    const stdout = await emit(["--out", out]);
    expect(stdout).toMatch(/^wrote kernels\.ts, model\.ts, index\.ts, README\.md to /);
    expect((await readdir(out)).sort()).toEqual([
      "README.md",
      "index.ts",
      "kernels.ts",
      "model.ts",
    ]);
    expect(await readFile(join(out, "model.ts"), "utf8")).toMatch(/export function run\(gpu: GPU/);
  });

  it("refuses a non-empty directory unless --force, and keeps unrelated files", async () => {
    const out = join(SCRATCH, "cli-full");
    await mkdir(out, { recursive: true });
    await writeFile(join(out, "notes.txt"), "mine\n");
    await expect(emit(["--out", out])).rejects.toThrow(/is not empty .*--force/);
    expect(await readdir(out)).toEqual(["notes.txt"]);
    await emit(["--out", out, "--force"]);
    expect((await readdir(out)).sort()).toEqual([
      "README.md",
      "index.ts",
      "kernels.ts",
      "model.ts",
      "notes.txt",
    ]);
  });

  it("leaves no partial output when a write fails", async () => {
    const out = join(SCRATCH, "cli-fail");
    await mkdir(join(out, "model.ts"), { recursive: true }); // a directory where a file must go
    await expect(emit(["--out", out, "--force"])).rejects.toThrow(
      /model\.ts exists and is not a file/,
    );
    expect(await readdir(out)).toEqual(["model.ts"]);
    const fresh = join(SCRATCH, "cli-fail-new", "nested");
    await expect(emit(["--out", fresh, "--block-size", "0"])).rejects.toThrow(/blockSize/);
    await expect(readdir(join(SCRATCH, "cli-fail-new"))).rejects.toThrow(/ENOENT/);
  });

  it("rolls back written files when a later write fails", async () => {
    const files = new Map([
      ["a.ts", "new a"],
      ["b.ts", "new b"],
      ["c.ts", "new c"],
    ]);
    const failing = async (path: string, text: string | Uint8Array) => {
      if (path.endsWith("c.ts")) throw new Error("disk full");
      await writeFile(path, text);
    };
    const out = join(SCRATCH, "rollback");
    await mkdir(out, { recursive: true });
    await writeFile(join(out, "a.ts"), "old a");
    await expect(writeModuleFiles(out, files, true, failing)).rejects.toThrow(/disk full/);
    expect(await readdir(out)).toEqual(["a.ts"]);
    expect(await readFile(join(out, "a.ts"), "utf8")).toBe("old a");
    const created = join(SCRATCH, "rollback-new", "deeper");
    await expect(writeModuleFiles(created, files, false, failing)).rejects.toThrow(/disk full/);
    await expect(readdir(join(SCRATCH, "rollback-new"))).rejects.toThrow(/ENOENT/);
  });
});
