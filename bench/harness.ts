/**
 * Benchmark harness over benny: every suite runs its cases in one process, back to back,
 * and reports medians and ratios *within that run* (the machine is shared and noisy, so
 * absolute times drift between runs but ratios hold). Results go to bench/results/NAME.json
 * (benny's format plus our summary) and a markdown table printed to stdout.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import b from "benny";

/** What a case's set-up returns: the function to time, and how to free what it holds. */
export interface Timed {
  readonly run: () => unknown;
  readonly dispose?: () => void;
}

export interface BenchCase {
  readonly name: string;
  /** Called once before timing; returns the function to time (may be async). */
  readonly setup: () => Promise<(() => unknown) | Timed> | (() => unknown) | Timed;
  /** Work per call, for GFLOP/s columns (multiply-adds; 2 flops each). */
  readonly macs?: number;
}

export interface CaseSummary {
  readonly name: string;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly samples: number;
  readonly gflops: number | null;
}

export interface SuiteSummary {
  readonly suite: string;
  readonly machine: string;
  readonly date: string;
  readonly cases: readonly CaseSummary[];
}

export const RESULTS_DIR = new URL("./results/", import.meta.url);

export function machineDescription(): string {
  const cpu = cpus()[0]?.model ?? "unknown cpu";
  return `${cpus().length} x ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}

/** Runs the cases with benny and returns per-case medians (ms). */
export async function runSuite(
  suite: string,
  cases: readonly BenchCase[],
  options: { minSamples?: number; maxTime?: number } = {},
): Promise<SuiteSummary> {
  const prepared: { name: string; fn: () => unknown; macs?: number }[] = [];
  const disposers: (() => void)[] = [];
  for (const c of cases) {
    const made = await c.setup();
    const timed: Timed = typeof made === "function" ? { run: made } : made;
    if (timed.dispose) disposers.push(timed.dispose);
    prepared.push({ name: c.name, fn: timed.run, ...(c.macs ? { macs: c.macs } : {}) });
  }
  let summary: Awaited<ReturnType<typeof b.suite>>;
  try {
    summary = await b.suite(
      suite,
      ...prepared.map((c) =>
        b.add(c.name, async () => {
          await c.fn();
        }),
      ),
      b.configure({
        cases: { minSamples: options.minSamples ?? 5, maxTime: options.maxTime ?? 5 },
      }),
      b.cycle(() => undefined),
    );
  } finally {
    for (const dispose of disposers) dispose();
  }
  const caseSummaries = summary.results.map((r, i) => {
    const samples = r.details.sampleResults.map((s) => s * 1000);
    const medianMs = r.details.median * 1000;
    const macs = prepared[i]?.macs;
    return {
      name: r.name,
      medianMs,
      minMs: Math.min(...samples),
      maxMs: Math.max(...samples),
      samples: r.samples,
      gflops: macs ? (2 * macs) / (medianMs / 1000) / 1e9 : null,
    };
  });
  const result: SuiteSummary = {
    suite,
    machine: machineDescription(),
    date: new Date().toISOString(),
    cases: caseSummaries,
  };
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(new URL(`${suite}.json`, RESULTS_DIR), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

export function markdownTable(summary: SuiteSummary, extra?: (c: CaseSummary) => string): string {
  const lines = [
    `### ${summary.suite}`,
    "",
    `${summary.machine}; ${summary.date}`,
    "",
    `| case | median ms | min ms | max ms | samples | GFLOP/s |${extra ? " note |" : ""}`,
    `|---|---:|---:|---:|---:|---:|${extra ? "---|" : ""}`,
  ];
  for (const c of summary.cases) {
    lines.push(
      `| ${c.name} | ${c.medianMs.toFixed(2)} | ${c.minMs.toFixed(2)} | ${c.maxMs.toFixed(2)} | ${c.samples} | ${c.gflops === null ? "" : c.gflops.toFixed(1)} |${extra ? ` ${extra(c)} |` : ""}`,
    );
  }
  return lines.join("\n");
}

/** Median of `a` over median of `b` from one summary. */
export function ratio(summary: SuiteSummary, a: string, b: string): number {
  const find = (name: string) => summary.cases.find((c) => c.name === name)?.medianMs ?? Number.NaN;
  return find(a) / find(b);
}
