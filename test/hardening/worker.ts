/**
 * The corpus worker: a child process that runs the CLI's `main` on one corpus entry after
 * another, as `sprig ARGS` would, and measures each one. corpus.test.ts bundles this file
 * with the CLI (esbuild, packages external) and forks two of them.
 *
 * Per entry, on a message { id, args, cwd }: reset what a previous entry could have left
 * (process.exitCode, SPRIG_DEBUG, the working directory), collect garbage, reset the
 * process's peak resident set (writing "5" to /proc/self/clear_refs sets VmHWM back to the
 * current RSS), capture stdout and stderr, await main(args), and answer with the exit status
 * main returns (what the CLI exits with), the captured text, the wall time and the peak RSS
 * in KiB (VmHWM afterwards). The parent kills a worker whose entry runs past its limit.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { main } from "../../src/cli/main.js";

export interface Job {
  readonly id: number;
  readonly args: readonly string[];
  readonly cwd: string;
}

export interface JobResult {
  readonly id: number;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  readonly peakKb: number;
}

const statusField = (name: string): number => {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(
    readFileSync("/proc/self/status", "utf8"),
  );
  return match === null ? Number.NaN : Number(match[1]);
};

const collect = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

async function runJob(job: Job): Promise<JobResult> {
  process.exitCode = undefined;
  delete process.env.SPRIG_DEBUG;
  process.chdir(job.cwd);
  collect();
  writeFileSync("/proc/self/clear_refs", "5");
  let stdout = "";
  let stderr = "";
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    return true;
  }) as typeof process.stderr.write;
  const start = performance.now();
  let code: number;
  try {
    code = await main(job.args);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  const ms = performance.now() - start;
  return { id: job.id, code, stdout, stderr, ms, peakKb: statusField("VmHWM") };
}

process.on("message", (job: Job) => {
  runJob(job).then(
    (result) => process.send?.(result),
    (error: unknown) =>
      process.send?.({
        id: job.id,
        code: -1,
        stdout: "",
        stderr: `worker: ${(error as Error).stack ?? String(error)}`,
        ms: 0,
        peakKb: 0,
      } satisfies JobResult),
  );
});
process.send?.({ ready: true });
