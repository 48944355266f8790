/**
 * Runs the hardening corpus (corpus.ts): every entry must be refused with exactly one
 * stderr line starting "sprig: " that names the field or file, exit status 1, no stack
 * trace, nothing left behind in its directory, in under 5 s and 1 GiB.
 *
 * Entries run in two worker processes (worker.ts: the CLI's main, bundled once, entry after
 * entry, each with its time and its own peak RSS, VmHWM reset per entry), so the corpus
 * does not pay Node's and sprig's start-up once per entry; a worker whose entry runs past
 * the limit is killed. Then, per command, the slowest entry runs again as a real one-shot
 * `node sprig.js` process, which must give the same status and message and stay within
 * the limits start-up included (its peak RSS from process.resourceUsage at exit).
 */
import { type ChildProcess, fork, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMANDS, type CorpusEntry, corpus } from "./corpus.js";
import { bundle, createFiles, errorLines, tree } from "./support.js";
import type { Job, JobResult } from "./worker.js";

const LIMIT_MS = 5000;
const LIMIT_KB = 1024 * 1024;
const ENTRIES = corpus();

let bundleDir = "";
let workDir = "";
const results = new Map<string, JobResult & { dir: string }>();

// ---- the worker pool ------------------------------------------------------------------------

interface Pending {
  readonly job: Job;
  readonly resolve: (result: JobResult) => void;
  readonly reject: (error: Error) => void;
}

class WorkerPool {
  private readonly idle: ChildProcess[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly script: string,
    size: number,
  ) {
    for (let i = 0; i < size; i++) this.spawnWorker();
  }

  private spawnWorker(): void {
    const env = { ...process.env };
    delete env.SPRIG_DEBUG;
    const child = fork(this.script, [], {
      execArgv: ["--expose-gc"],
      env,
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    child.once("message", () => {
      this.idle.push(child);
      this.pump();
    });
  }

  run(args: readonly string[], cwd: string): Promise<JobResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, args, cwd }, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (!this.closed && this.idle.length > 0 && this.queue.length > 0) {
      const child = this.idle.pop()!;
      const pending = this.queue.shift()!;
      const watchdog = setTimeout(() => {
        child.removeAllListeners("message");
        child.kill("SIGKILL");
        pending.reject(new Error(`still running after ${2 * LIMIT_MS} ms: killed`));
        this.spawnWorker();
      }, 2 * LIMIT_MS);
      child.once("message", (result: JobResult) => {
        clearTimeout(watchdog);
        this.idle.push(child);
        pending.resolve(result);
        this.pump();
      });
      child.send(pending.job);
    }
  }

  close(): void {
    this.closed = true;
    for (const child of this.idle) child.kill();
  }
}

let pool: WorkerPool;

const expand = (text: string, dir: string) => text.replaceAll("$DIR", dir);

/** The checks every entry must pass (see the module comment). */
function expectRefused(entry: CorpusEntry, dir: string, result: JobResult): void {
  const context = `${entry.name}\n${result.stderr}`;
  expect(result.code, context).toBe(1);
  expect(result.stderr, context).not.toMatch(/\n\s+at |internal error/);
  const lines = errorLines(result.stderr);
  expect(lines, context).toHaveLength(1);
  expect(lines[0], context).toMatch(/^sprig: /);
  for (const mention of entry.mentions) expect(lines[0], context).toContain(expand(mention, dir));
}

// ---- the run ---------------------------------------------------------------------------------

beforeAll(async () => {
  // sprig.js: named so, main.ts sees itself invoked directly
  bundleDir = await bundle({
    "corpus-worker.js": "test/hardening/worker.ts",
    "sprig.js": "src/cli/main.ts",
  });
  workDir = await mkdtemp(join(tmpdir(), "sprig-corpus-"));
  pool = new WorkerPool(join(bundleDir, "corpus-worker.js"), 2);
});

afterAll(async () => {
  pool?.close();
  if (workDir !== "") await rm(workDir, { recursive: true, force: true });
  if (bundleDir !== "") await rm(bundleDir, { recursive: true, force: true });
});

describe("the corpus", () => {
  it("has at least 150 entries with unique names, across every command", () => {
    expect(ENTRIES.length).toBeGreaterThanOrEqual(150);
    expect(new Set(ENTRIES.map((e) => e.name)).size).toBe(ENTRIES.length);
    expect(new Set(ENTRIES.map((e) => e.command))).toEqual(new Set(COMMANDS));
  });
});

describe.concurrent("every corpus entry is one clear error, fast, leaving nothing behind", () => {
  ENTRIES.forEach((entry, index) => {
    it(entry.name, async () => {
      const dir = join(workDir, `e${index}`);
      await mkdir(dir);
      await createFiles(dir, entry.files ?? {});
      const before = await tree(dir);
      const result = await pool.run(
        entry.args.map((a) => expand(a, dir)),
        dir,
      );
      results.set(entry.name, { ...result, dir });
      expectRefused(entry, dir, result);
      expect(await tree(dir), entry.name).toEqual(before);
      expect(result.ms, entry.name).toBeLessThan(LIMIT_MS);
      expect(result.peakKb, entry.name).toBeLessThan(LIMIT_KB);
    });
  });
});

/** A one-shot CLI process with its peak RSS (KiB) from process.resourceUsage at exit. */
async function oneShot(args: readonly string[], cwd: string) {
  const rssFile = join(workDir, `rss-${Math.random().toString(36).slice(2)}`);
  const preload = `import{writeFileSync}from"node:fs";process.on("exit",()=>writeFileSync(${JSON.stringify(rssFile)},String(process.resourceUsage().maxRSS)));`;
  const env = { ...process.env };
  delete env.SPRIG_DEBUG;
  const start = performance.now();
  const run = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        `--import=data:text/javascript;base64,${Buffer.from(preload).toString("base64")}`,
        join(bundleDir, "sprig.js"),
        ...args,
      ],
      { cwd, env, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
  const ms = performance.now() - start;
  const peakKb = Number(readFileSync(rssFile, "utf8"));
  await rm(rssFile, { force: true });
  return { ...run, ms, peakKb };
}

describe("the slowest entry of each command, as a one-shot process", () => {
  it("gives the same status and message within the limits, start-up included", async () => {
    const slowest = COMMANDS.map((command) => {
      const mine = ENTRIES.filter((e) => e.command === command && results.has(e.name));
      return mine.sort((a, b) => results.get(b.name)!.ms - results.get(a.name)!.ms)[0];
    }).filter((e): e is CorpusEntry => e !== undefined);
    expect(slowest.length).toBe(COMMANDS.length);
    const report: string[] = [];
    for (const entry of slowest) {
      const inWorker = results.get(entry.name)!;
      const dir = join(workDir, `one-shot-${COMMANDS.indexOf(entry.command)}`);
      await mkdir(dir);
      await createFiles(dir, entry.files ?? {});
      const before = await tree(dir);
      const run = await oneShot(
        entry.args.map((a) => expand(a, dir)),
        dir,
      );
      expect(run.code, entry.name).toBe(inWorker.code);
      expect(errorLines(run.stderr), entry.name).toEqual(
        errorLines(inWorker.stderr.replaceAll(inWorker.dir, dir)),
      );
      expect(await tree(dir)).toEqual(before);
      expect(run.ms, entry.name).toBeLessThan(LIMIT_MS);
      expect(run.peakKb, entry.name).toBeLessThan(LIMIT_KB);
      report.push(
        `${entry.name}: worker ${inWorker.ms.toFixed(0)} ms ${(inWorker.peakKb / 1024).toFixed(0)} MiB, one-shot ${run.ms.toFixed(0)} ms ${(run.peakKb / 1024).toFixed(0)} MiB`,
      );
    }
    const all = [...results.values()];
    const worst = all.reduce((a, b) => (b.ms > a.ms ? b : a));
    const biggest = all.reduce((a, b) => (b.peakKb > a.peakKb ? b : a));
    console.log(
      [
        `corpus: ${ENTRIES.length} entries; slowest ${worst.ms.toFixed(0)} ms, largest peak RSS ${(biggest.peakKb / 1024).toFixed(0)} MiB`,
        ...report,
      ].join("\n"),
    );
  });
});
