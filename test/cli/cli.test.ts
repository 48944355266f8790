import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLES } from "../../src/cli/help.js";
import { buildProgram } from "../../src/cli/main.js";
import { VERSION } from "../../src/version.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CONFORMANCE = fileURLToPath(new URL("../../../shared/conformance/", import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** At most two CLI processes at a time: the machine has two cores. */
let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(body: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((resolve) => waiting.push(resolve));
  running += 1;
  try {
    return await body();
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

/**
 * How the CLI is launched. "tsx" is the development path (`node --import tsx
 * src/cli/main.ts`, what `npm start` and `npm run sprig` do), "bin" the package's launcher,
 * which runs the compiled CLI in dist/ (built by `npm ci` through `prepare`, or `npm run
 * build`; a missing dist/ fails these tests) with plain node, and "bundle" the sources
 * bundled once by esbuild (what tsx transpiles with), packages left external, run by plain
 * node: most checks use it, as it starts fastest. The launcher tests below check that all
 * three behave alike.
 */
type Launcher = "tsx" | "bin" | "bundle";

/** The bundled CLI; its name ends in "sprig.js" so that main.ts sees itself invoked directly. */
let bundle = "";

function launch(via: Launcher, args: readonly string[]): string[] {
  switch (via) {
    case "tsx":
      return ["--import", "tsx", "src/cli/main.ts", ...args];
    case "bin":
      return ["bin/sprig.js", ...args];
    case "bundle":
      return [bundle, ...args];
  }
}

/** Runs the CLI as a child process from the repository root. */
function sprig(
  args: readonly string[],
  via: Launcher = "bundle",
  extraEnv: Readonly<Record<string, string>> = {},
): Promise<Run> {
  return slot(() => spawnCli(launch(via, args), extraEnv));
}

function spawnCli(
  argv: readonly string[],
  extraEnv: Readonly<Record<string, string>> = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...extraEnv };
    delete env.SPRIG_DEBUG;
    const child = spawn(process.execPath, argv, {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}

/** A user error: exit status 1, one "sprig: ..." line on stderr, no stack trace. */
function expectUserError(run: Run, ...mentions: string[]): string {
  expect(run.code, run.stderr).toBe(1);
  expect(run.stderr).not.toContain("    at ");
  const err = lines(run.stderr);
  expect(err, run.stderr).toHaveLength(1);
  expect(err[0]).toMatch(/^sprig: /);
  for (const m of mentions) expect(err[0]).toContain(m);
  return err[0]!;
}

let tmp: string;
let bundleDir: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sprig-cli-"));
  // inside the repository (.tmp is git- and biome-ignored) so packages resolve from node_modules
  await mkdir(join(ROOT, "test/cli/.tmp"), { recursive: true });
  bundleDir = await mkdtemp(join(ROOT, "test/cli/.tmp/cli-"));
  bundle = join(bundleDir, "sprig.js");
  await build({
    entryPoints: [join(ROOT, "src/cli/main.ts")],
    outfile: bundle,
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "silent",
  });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  await rm(bundleDir, { recursive: true, force: true });
});

describe.concurrent("launchers", () => {
  it("node --import tsx src/cli/main.ts, bin/sprig.js and the bundle agree", async () => {
    const args = ["report", "--keep-rate", "1.5"];
    const [viaTsx, viaBin, viaBundle] = await Promise.all([
      sprig(args, "tsx"),
      sprig(args, "bin"),
      sprig(args, "bundle"),
    ]);
    expectUserError(viaTsx, '"sparsity.tokens.keepRate"');
    expect(viaBin).toEqual(viaTsx);
    expect(viaBundle).toEqual(viaTsx);
  });

  it("bin/sprig.js runs the compiled CLI on plain node: tsx is never loaded", async () => {
    // A resolve hook that lists every module the launcher's process resolves, on stderr.
    const hook = `data:text/javascript,${encodeURIComponent(
      'export async function resolve(s, c, next) { const r = await next(s, c); process.stderr.write("resolved " + r.url + "\\n"); return r; }',
    )}`;
    const register = `data:text/javascript,${encodeURIComponent(
      `import { register } from "node:module"; register(${JSON.stringify(hook)});`,
    )}`;
    const run = await slot(() => spawnCli(["--import", register, "bin/sprig.js", "--version"]));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${VERSION}\n`);
    const resolved = lines(run.stderr).filter((l) => l.startsWith("resolved "));
    expect(resolved.some((l) => l.includes("/dist/src/cli/main.js"))).toBe(true);
    expect(resolved.filter((l) => l.includes("/node_modules/tsx/"))).toEqual([]);
  });
});

describe.concurrent("version, help and exit status", () => {
  it("--version prints package.json's version through every launcher", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
      version: string;
    };
    expect(VERSION).toBe(pkg.version);
    for (const via of ["tsx", "bin", "bundle"] as const) {
      const run = await sprig(["--version"], via);
      expect(run, via).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
    }
  });

  it("every command has examples whose flags are all its own", () => {
    const program = buildProgram();
    const names = program.commands.map((c) => c.name());
    expect(names.length).toBeGreaterThanOrEqual(11);
    expect(Object.keys(EXAMPLES).sort()).toEqual([...names].sort());
    for (const command of program.commands) {
      const own = new Set(command.options.map((o) => o.long));
      for (const example of EXAMPLES[command.name()]!) {
        const words = example.split(/\s+/);
        expect(words.slice(0, 2), example).toEqual(["sprig", command.name()]);
        const flags = words.filter((w) => w.startsWith("--"));
        expect(
          flags.filter((f) => !own.has(f)),
          example,
        ).toEqual([]);
      }
    }
  });

  it("every command's --help shows its examples and the exit status, with status 0", async () => {
    const names = buildProgram().commands.map((c) => c.name());
    const runs = await Promise.all(names.map((name) => sprig([name, "--help"])));
    names.forEach((name, i) => {
      const run = runs[i]!;
      expect(run.code, `${name}: ${run.stderr}`).toBe(0);
      expect(run.stdout).toContain(`Usage: sprig ${name} `);
      expect(run.stdout).toContain(`  $ ${EXAMPLES[name]![0]}`);
      expect(run.stdout).toContain("  2  internal error");
    });
    const top = await sprig(["--help"]);
    expect(top.code).toBe(0);
    for (const name of names) expect(top.stdout).toContain(`  ${name} `);
    expect(top.stdout).toContain("Exit status:");
  });

  it("a user error exits 1 and an internal error 2, through bin/sprig.js and the bundle", async () => {
    for (const via of ["bin", "bundle"] as const) {
      expectUserError(await sprig(["report", "--frames", "0"], via), '"frames"');
      const usage = await sprig(["report", "--no-such-flag"], via);
      expect(usage.code, usage.stderr).toBe(1);
      expect(usage.stderr).toContain("unknown option '--no-such-flag'");
      const bug = await sprig(["report", "--frames", "2"], via, { SPRIG_TEST_INTERNAL_ERROR: "1" });
      expect(bug.code, bug.stderr).toBe(2);
      expect(bug.stdout).toBe("");
      expect(bug.stderr).toMatch(/^sprig: internal error \(this is a bug in sprig\):\nError: /);
      expect(bug.stderr).toContain("    at ");
    }
  });

  it("run prints its results on stdout and nothing on stderr when stderr is not a terminal", async () => {
    const args = ["run", "--frames", "1", "--layers", "1", "--backend", "reference"];
    const run = await sprig([...args, "--reps", "1", "--warmup", "0"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe("");
    expect(run.stdout).toMatch(/^SViTT BEiT.*vision encoder, 1 frame.*, on reference /);
    expect(run.stdout).toMatch(/\nforward: median [\d.]+ ms /);
  });
});

describe.concurrent("sprig report", () => {
  it("--frames 8 prints the SViTT and dense totals", async () => {
    const run = await sprig(["report", "--frames", "8"], "tsx");
    expect(run.code, run.stderr).toBe(0);
    const out = lines(run.stdout);
    expect(out[0]).toBe("SViTT BEiT-base vision encoder, 8 frames");
    expect(out.find((l) => l.startsWith("total: "))).toMatch(
      // 86.26 GMAC as the authors compute it (design/platform-facts.md) less the 6.52 that
      // sink-token-selection saves (test/models/cost.test.ts derives it)
      /^total: 79\.74 GMAC \(linear [\d.]+, attention 4\.08, /,
    );
    expect(out.find((l) => l.startsWith("dense: "))).toMatch(
      /^dense: 179\.56 GMAC \(attention 45\.38\); sparse\/dense = 0\.444$/,
    );
    // per-layer table: 12 layers, tokens 1569 -> 942 after layer 3 (ceil(0.6 * 1568) = 941 + CLS)
    const layer3 = out.find((l) => /^\s+3\s/.test(l));
    expect(layer3).toMatch(/^\s+3\s+1569\s+942\s/);
  });

  it("--frames 4 --json prints one JSON object with the totals", async () => {
    const run = await sprig(["report", "--frames", "4", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.frames).toBe(4);
    expect(report.variant).toBe("svitt");
    // 48.67 GMAC as the authors compute it, less what sink-token-selection saves
    expect(Math.abs(report.totals.macs / 1e9 - 45.94) / 45.94).toBeLessThan(0.005);
    expect(Math.abs(report.dense_totals.macs / 1e9 - 78.49) / 78.49).toBeLessThan(0.005);
    expect(report.layers).toHaveLength(12);
    expect(report.sparsity.tokens.keepRate).toBe(0.7);
  });

  it("prints the memory estimate run would check, within this machine's memory", async () => {
    const text = await sprig(["report", "--frames", "4"]);
    expect(text.code, text.stderr).toBe(0);
    expect(lines(text.stdout).find((l) => l.startsWith("memory: "))).toMatch(
      /^memory: estimated peak [\d.]+ MiB \(weights [\d.]+ MiB, .*activations [\d.]+ MiB at %\d+ .*\); within the [\d.]+ GiB of this machine's memory/,
    );
    const json = await sprig(["report", "--frames", "4", "--json"]);
    const { memory, totals } = JSON.parse(json.stdout);
    expect(memory.weight_bytes).toBe(totals.weightBytes);
    // pixel_values [1, 4, 3, 224, 224] f32
    expect(memory.input_bytes).toBe(4 * 3 * 224 * 224 * 4);
    expect(memory.estimated_peak_bytes).toBe(
      memory.weight_bytes +
        memory.constant_bytes +
        memory.input_bytes +
        memory.peak_activation_bytes,
    );
    expect(memory.limit_bytes).toBeGreaterThan(0);
  });

  it("--dense --frames 4 reports the dense encoder", async () => {
    const run = await sprig(["report", "--dense", "--frames", "4"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("dense BEiT-base vision encoder, 4 frames");
    expect(run.stdout).toMatch(/total: 78\.49 GMAC/);
  });
});

describe.concurrent("bad input: one message naming the field, non-zero exit, no stack", () => {
  const cases: [string[], string][] = [
    [["report", "--frames", "0"], '"frames"'],
    [["report", "--frames", "abc"], '"frames"'],
    [["report", "--keep-rate", "0"], '"sparsity.tokens.keepRate"'],
    [["report", "--keep-rate", "1.5"], '"sparsity.tokens.keepRate"'],
    [["report", "--block-size", "0"], '"sparsity.attention.blockSize"'],
    [["report", "--local", "2"], '"sparsity.attention.local"'],
    [["report", "--padding", "sideways"], '"sparsity.attention.padding"'],
    [["report", "--token-order", "spiral"], '"sparsity.tokenOrder"'],
    [["report", "--drop-after", "3,99"], '"sparsity.tokens.dropAfter"'],
    [["run", "--frames", "0"], '"frames"'],
    [["run", "--reps", "0"], '"reps"'],
    [["run", "--backend", "nope"], "known backends: reference"],
    [["run", "--kernels", "maybe"], '"kernels": must be one of auto, on, off'],
    [["bench", "--op", "attention", "--kernels", "fast"], '"kernels"'],
    [["bench", "--op", "attention", "--frames", "0"], '"frames"'],
    [["bench", "--op", "softmax"], '"op"'],
    [["export", "--frames", "0", "--onnx", "never-written.onnx"], '"frames"'],
    [
      ["export", "--dense", "--frames", "1", "--layers", "1", "--onnx", "/nonexistent-dir/m.onnx"],
      "cannot write /nonexistent-dir/m.onnx",
    ],
  ];
  for (const [args, field] of cases) {
    it(args.join(" "), async () => {
      expectUserError(await sprig(args), field);
    });
  }

  it("report --random 99 names the field, the layer and the allowed range", async () => {
    const message = expectUserError(
      await sprig(["report", "--random", "99"]),
      '"sparsity.attention.random"',
    );
    expect(message).toContain("layer 0");
    expect(message).toContain("allowed 0..28");
  });

  it("a --config file with invalid JSON", async () => {
    const path = join(tmp, "broken.json");
    await writeFile(path, '{"frames": 4,');
    expectUserError(await sprig(["report", "--config", path]), path, "not valid JSON");
  });

  it("a --config file with an unknown top-level field", async () => {
    const path = join(tmp, "unknown.json");
    await writeFile(path, JSON.stringify({ frames: 4, framez: 8 }));
    expectUserError(await sprig(["report", "--config", path]), '"framez"');
  });

  it("a --config file with an unknown nested field", async () => {
    const path = join(tmp, "nested.json");
    await writeFile(path, JSON.stringify({ model: { hiddenSise: 512 } }));
    expectUserError(await sprig(["report", "--config", path]), '"model.hiddenSise"');
  });

  it("a --config file that does not exist", async () => {
    const path = join(tmp, "absent.json");
    expectUserError(await sprig(["report", "--config", path]), path);
  });

  it("verify /nonexistent", async () => {
    expectUserError(await sprig(["verify", "/nonexistent"]), "/nonexistent");
  });

  it("--backend nope lists the known backends", async () => {
    expectUserError(
      await sprig(["verify", CONFORMANCE, "--backend", "nope"]),
      '"nope"',
      "known backends: reference",
    );
  });

  it("--backend tfjs-webgl in Node says it runs only in a browser", async () => {
    expectUserError(
      await sprig(["verify", CONFORMANCE, "--backend", "tfjs-webgl"]),
      "tfjs-webgl",
      "runs only in a browser",
    );
  });

  it("compile --dot into a missing directory creates no file", async () => {
    expectUserError(
      await sprig(["compile", "--frames", "4", "--dot", "/nonexistent-dir/x.dot"]),
      "/nonexistent-dir/x.dot",
    );
    expect(existsSync("/nonexistent-dir/x.dot")).toBe(false);
  });
});

describe.concurrent("invalid flags for a disabled sparsity part", () => {
  // Bug (src/cli/spec-options.ts, specFromFlags): the attention flags are applied and checked
  // only `if (attention !== null)` and the token flags only `if (tokens !== null)`, and the
  // --dense guard covers only --keep-rate/--block-size/--random/--local. So an invalid value
  // for a disabled part is dropped silently with exit 0, although the README promises that
  // "every invalid value is rejected with one message naming the field".
  it("--keep-rate 0 is rejected even when a config file disables token pruning", async () => {
    const path = join(tmp, "no-tokens.json");
    await writeFile(path, JSON.stringify({ sparsity: { tokens: null } }));
    expectUserError(
      await sprig(["report", "--frames", "4", "--config", path, "--keep-rate", "0"]),
      '"sparsity.tokens.keepRate"',
    );
  });

  it("--padding sideways is rejected together with --dense", async () => {
    expectUserError(
      await sprig(["report", "--frames", "4", "--dense", "--padding", "sideways"]),
      "padding",
    );
  });
});

describe.concurrent("no half-written files", () => {
  it("a failing compile --dot leaves its directory empty", async () => {
    const dir = join(tmp, "dot-enotdir");
    await mkdir(dir);
    // a trailing slash makes the final rename fail after the temporary file was written
    expectUserError(await sprig(["compile", "--frames", "4", "--dot", `${dir}/x.dot/`]), "x.dot");
    expect(await readdir(dir)).toEqual([]);
  });

  it("a failing compile --dot onto a directory leaves only that directory", async () => {
    const dir = join(tmp, "dot-eisdir");
    await mkdir(join(dir, "graph.dot"), { recursive: true });
    expectUserError(
      await sprig(["compile", "--frames", "4", "--dot", join(dir, "graph.dot")]),
      "graph.dot",
    );
    expect(await readdir(dir)).toEqual(["graph.dot"]);
    expect(await readdir(join(dir, "graph.dot"))).toEqual([]);
  });

  it("a successful compile --dot writes a complete DOT file and nothing else", async () => {
    const dir = join(tmp, "dot-ok");
    await mkdir(dir);
    const run = await sprig(["compile", "--frames", "4", "--dot", join(dir, "g.dot")]);
    expect(run.code, run.stderr).toBe(0);
    expect(await readdir(dir)).toEqual(["g.dot"]);
    const text = await readFile(join(dir, "g.dot"), "utf8");
    expect(text.startsWith('digraph "beit_4f" {')).toBe(true);
    expect(text.trimEnd().endsWith("}")).toBe(true);
    expect(text).toContain("blockSparseAttention");
  });
});

describe("sprig verify", () => {
  it("passes every case in ../shared/conformance", async () => {
    const run = await sprig(["verify", CONFORMANCE], "tsx");
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const out = lines(run.stdout);
    expect(out.at(-1)).toBe("14 passed, 0 failed");
    expect(out.filter((l) => l.startsWith("PASS "))).toHaveLength(14);
  });

  it("reports a truncated case as failed, with exit 1", async () => {
    const dir = join(tmp, "truncated");
    await mkdir(dir);
    const name = "b1_selfattn_sparse_rpb_div";
    await copyFile(join(CONFORMANCE, `${name}.json`), join(dir, `${name}.json`));
    const bytes = await readFile(join(CONFORMANCE, `${name}.safetensors`));
    await writeFile(
      join(dir, `${name}.safetensors`),
      bytes.subarray(0, Math.floor(bytes.length / 2)),
    );
    const run = await sprig(["verify", dir]);
    expectUserError(run, `verify ${dir}: 1 of 1 case failed`, name);
    const out = lines(run.stdout);
    expect(out.at(-1)).toBe("0 passed, 1 failed");
    expect(out.some((l) => l.startsWith("FAIL ") && l.includes(name))).toBe(true);
  });
});
