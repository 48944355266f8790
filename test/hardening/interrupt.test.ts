/**
 * Interrupt-safe outputs (src/io/cleanup.ts): SIGINT or SIGTERM while a command writes
 * leaves the tree as it was, and the command exits 130 or 143 with one line saying so.
 *
 * Each command runs as a one-shot process with the test hook SPRIG_TEST_PAUSE_BEFORE_RENAME
 * (src/io/atomic.ts), which stops its n-th atomic write after the temporary file is written
 * and before the rename, the moment an incomplete output exists; the test sends the signal
 * when the hook says it has paused.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onInterrupt, pendingCleanups } from "../../src/io/cleanup.js";
import { writeFileAtomic } from "../../src/io/atomic.js";
import { SHARED, slot } from "../support/cli.js";
import { K1_CONFIG } from "../support/k1.js";
import { bundle, errorLines, tree } from "./support.js";

const INPUTS = join(SHARED, "conformance/inputs");
const TINY = ["--dense", "--frames", "1", "--layers", "1"];
const PAUSED = "sprig: test hook: paused before renaming ";

let bundleDir = "";
let work = "";

beforeAll(async () => {
  bundleDir = await bundle({ "sprig.js": "src/cli/main.ts" });
  work = await mkdtemp(join(tmpdir(), "sprig-interrupt-"));
  await writeFile(join(work, "k1.json"), JSON.stringify(K1_CONFIG));
  const sidecar = JSON.parse(
    await readFile(join(SHARED, "conformance/video-text/k1_retrieval_pixels.json"), "utf8"),
  ) as { module_spec: { vocab: string[] } };
  await writeFile(join(work, "vocab.txt"), `${sidecar.module_spec.vocab.join("\n")}\n`);
});

afterAll(async () => {
  if (work !== "") await rm(work, { recursive: true, force: true });
  if (bundleDir !== "") await rm(bundleDir, { recursive: true, force: true });
});

interface Interrupted {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  /** The temporary file the command had written when it was stopped. */
  readonly temp: string;
}

/** Runs `sprig args`, pausing its `nth` atomic write, and sends `signal` there. */
function interrupt(
  args: readonly string[],
  signal: "SIGINT" | "SIGTERM",
  nth = 1,
): Promise<Interrupted> {
  return slot(
    () =>
      new Promise((resolve, reject) => {
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          SPRIG_TEST_PAUSE_BEFORE_RENAME: `60000:${nth}`,
        };
        delete env.SPRIG_DEBUG;
        const child = spawn(process.execPath, [join(bundleDir, "sprig.js"), ...args], {
          cwd: work,
          env,
          stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        let temp = "";
        const giveUp = setTimeout(() => child.kill("SIGKILL"), 100_000);
        child.stderr.setEncoding("utf8").on("data", (d: string) => {
          stderr += d;
          const line = errorLines(stderr).find((l) => l.startsWith(PAUSED));
          if (temp === "" && line !== undefined) {
            temp = line.slice(PAUSED.length);
            child.kill(signal);
          }
        });
        child.on("error", reject);
        child.on("close", (code, exitSignal) => {
          clearTimeout(giveUp);
          resolve({ code, signal: exitSignal, stderr, temp });
        });
      }),
  );
}

/** The run was stopped mid-write and said so on its last line; the status is 128 + signal. */
function expectCleanExit(run: Interrupted, signal: "SIGINT" | "SIGTERM"): void {
  expect(run.temp, run.stderr).not.toBe("");
  expect(run.signal, run.stderr).toBeNull();
  expect(run.code, run.stderr).toBe(signal === "SIGINT" ? 130 : 143);
  const lines = errorLines(run.stderr);
  expect(lines.at(-1)).toMatch(new RegExp(`^sprig: interrupted by ${signal}; removed `));
  expect(lines.at(-1)).toContain(run.temp);
  expect(run.stderr).not.toContain("    at ");
}

describe.concurrent("SIGINT and SIGTERM while a command writes", () => {
  const cases: [string, "SIGINT" | "SIGTERM", (dir: string) => string[]][] = [
    ["export", "SIGINT", (dir) => ["export", ...TINY, "--onnx", join(dir, "m.onnx")]],
    ["export", "SIGTERM", (dir) => ["export", ...TINY, "--onnx", join(dir, "m.onnx")]],
    ["compile --dot", "SIGINT", (dir) => ["compile", ...TINY, "--dot", join(dir, "g.dot")]],
    [
      "convert",
      "SIGTERM",
      (dir) => [
        "convert",
        join(INPUTS, "k1_checkpoint.pth"),
        "--config",
        join(work, "k1.json"),
        "--out",
        join(dir, "k1.safetensors"),
      ],
    ],
    [
      "preprocess",
      "SIGINT",
      (dir) => [
        "preprocess",
        join(INPUTS, "clip.mp4"),
        "--frames",
        "2",
        "--image-size",
        "32",
        "--out",
        join(dir, "clip.safetensors"),
      ],
    ],
    [
      "embed",
      "SIGTERM",
      (dir) => [
        "embed",
        "--config",
        join(work, "k1.json"),
        "--vocab",
        join(work, "vocab.txt"),
        "--synthetic",
        "1",
        "--backend",
        "reference",
        "--out",
        join(dir, "e.safetensors"),
      ],
    ],
    [
      "emit into a new directory",
      "SIGINT",
      (dir) => ["emit", ...TINY, "--out", join(dir, "a/b/module")],
    ],
  ];
  cases.forEach(([label, signal, argsOf], index) => {
    it(`${label}, ${signal}: no temporary file, no new directory, status ${signal === "SIGINT" ? 130 : 143}`, async () => {
      const dir = join(work, `case-${index}`);
      await mkdir(dir);
      await writeFile(join(dir, "unrelated.txt"), "kept");
      const run = await interrupt(argsOf(dir), signal);
      expectCleanExit(run, signal);
      expect(run.temp.startsWith(dir)).toBe(true);
      expect(await tree(dir)).toEqual(["unrelated.txt"]);
    });
  });

  it("emit --force, SIGTERM at the second file: the first file gets its old contents back", async () => {
    const dir = join(work, "force");
    await mkdir(dir);
    // a module written completely first, then marked so that a restore is visible
    const first = await interrupt(["emit", ...TINY, "--out", dir], "SIGTERM", 99);
    expect(first.code, first.stderr).toBe(0);
    const files = await tree(dir);
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const name of files) await writeFile(join(dir, name), `old ${name}`);
    const run = await interrupt(["emit", ...TINY, "--out", dir, "--force"], "SIGTERM", 2);
    expectCleanExit(run, "SIGTERM");
    expect(await tree(dir)).toEqual(files);
    for (const name of files) expect(await readFile(join(dir, name), "utf8")).toBe(`old ${name}`);
  });
});

describe("the cleanup registry", () => {
  it("holds an atomic write's temporary file only while it is written", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sprig-cleanup-"));
    try {
      expect(pendingCleanups()).toBe(0);
      const writing = writeFileAtomic(join(dir, "a.txt"), "a");
      expect(pendingCleanups()).toBe(1);
      await writing;
      expect(pendingCleanups()).toBe(0);
      await expect(writeFileAtomic(join(dir, "missing/a.txt"), "a")).rejects.toThrow(/ENOENT/);
      expect(pendingCleanups()).toBe(0);
      expect(await tree(dir)).toEqual(["a.txt"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("unregisters each action by its own handle", () => {
    const a = onInterrupt("a", () => undefined);
    const b = onInterrupt("b", () => undefined);
    expect(pendingCleanups()).toBe(2);
    a();
    expect(pendingCleanups()).toBe(1);
    a();
    expect(pendingCleanups()).toBe(1);
    b();
    expect(pendingCleanups()).toBe(0);
  });
});
