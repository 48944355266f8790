/**
 * sink-token-selection (issue 11, item 1): the SViTT vision encoder in fp32 with and without
 * the pass, per backend and clip length, in one process. The pass removes the work of the
 * dropped tokens after attention at each drop layer (output projection, residuals,
 * LayerNorm, FFN); it is done when the time falls by at least 0.8x the fraction of MACs it
 * removes.
 *
 * Timing alternates the two executables run by run (with, without, without, with, ...)
 * after one untimed warm-up each, so drift on the shared machine hits both sides alike;
 * medians per side, and the ratio of medians. Each timed run starts after a 50 ms pause, so
 * the other executable's idle thread pool (onnxruntime's threads spin for a while after a
 * run) has stopped competing for the cores.
 *
 *   npx tsx bench/sink.bench.ts [backend ...]     (8 and 16 frames; default onnx)
 */
import { loadavg } from "node:os";
import {
  type BackendName,
  costOf,
  type Executable,
  type Graph,
  type HostTensor,
  initWeights,
  loadBackend,
  MODELS,
  median,
  modelPipeline,
  runPasses,
  syntheticClip,
  type VisionModelSpec,
  visionPreset,
} from "../src/index.js";
import { availableBackends } from "./common.js";
import { type CaseSummary, machineDescription, type SuiteSummary } from "./harness.js";

export const SINK_PASS = "sink-token-selection";

/** Pause before each timed run (see the file comment). */
const SETTLE_MS = 50;

/** The vision spec's pipeline without the named passes (the same graph otherwise). */
export function compileWithout(spec: VisionModelSpec, omitted: readonly string[]): Graph {
  const program = MODELS.vision.build(MODELS.vision.check(spec));
  const passes = modelPipeline(program.sparsity).filter((p) => !omitted.includes(p.name));
  return runPasses(program.graph, passes, { debug: 0 }).graph;
}

export interface TimedGraph {
  readonly name: string;
  readonly graph: Graph;
}

/**
 * Times `graphs` on `backend`, alternating run by run (order reversed every other round),
 * after one untimed warm-up run each; `weights` must cover every graph.
 */
export async function timeAlternating(
  backend: BackendName,
  graphs: readonly TimedGraph[],
  weights: ReadonlyMap<string, HostTensor>,
  inputs: Readonly<Record<string, HostTensor>>,
  rounds: number,
): Promise<CaseSummary[]> {
  const executables: Executable[] = [];
  try {
    for (const { graph } of graphs) {
      const executable = await (await loadBackend(backend)).compile(graph, weights);
      executables.push(executable);
      await executable.run(inputs);
    }
    const samples: number[][] = graphs.map(() => []);
    for (let round = 0; round < rounds; round++) {
      const order = graphs.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        const start = performance.now();
        await executables[i]!.run(inputs);
        samples[i]!.push(performance.now() - start);
      }
    }
    return graphs.map(({ name, graph }, i) => {
      const times = samples[i]!;
      const medianMs = median(times);
      return {
        name,
        medianMs,
        minMs: Math.min(...times),
        maxMs: Math.max(...times),
        samples: times.length,
        gflops: (2 * costOf(graph).totals.macs) / (medianMs / 1000) / 1e9,
      };
    });
  } finally {
    for (const executable of executables) executable.dispose();
  }
}

export interface SinkRow {
  readonly backend: string;
  readonly frames: number;
  readonly withMs: number;
  readonly withoutMs: number;
  readonly withMacs: number;
  readonly withoutMacs: number;
  /** Fraction of the time the pass saves: 1 - with / without. */
  readonly timeSaved: number;
  /** Fraction of the MACs the pass removes: 1 - with / without. */
  readonly macsSaved: number;
}

export async function benchSink(
  backends: readonly BackendName[],
  frames: readonly number[] = [8, 16],
  options: { rounds?: number } = {},
): Promise<{ rows: SinkRow[]; summaries: SuiteSummary[] }> {
  const rows: SinkRow[] = [];
  const summaries: SuiteSummary[] = [];
  for (const f of frames) {
    const spec = visionPreset(f);
    const withPass = compileWithout(spec, []);
    const withoutPass = compileWithout(spec, [SINK_PASS]);
    const weights = initWeights(withPass, 0);
    const inputs = syntheticClip(withPass, 0);
    for (const backend of backends) {
      const cases = await timeAlternating(
        backend,
        [
          { name: `${backend} ${f}f with ${SINK_PASS}`, graph: withPass },
          { name: `${backend} ${f}f without`, graph: withoutPass },
        ],
        weights,
        inputs,
        options.rounds ?? 10,
      );
      summaries.push({
        suite: `sink-${backend}-${f}f`,
        machine: machineDescription(),
        date: new Date().toISOString(),
        cases,
      });
      const withMacs = costOf(withPass).totals.macs;
      const withoutMacs = costOf(withoutPass).totals.macs;
      rows.push({
        backend,
        frames: f,
        withMs: cases[0]!.medianMs,
        withoutMs: cases[1]!.medianMs,
        withMacs,
        withoutMacs,
        timeSaved: 1 - cases[0]!.medianMs / cases[1]!.medianMs,
        macsSaved: 1 - withMacs / withoutMacs,
      });
    }
  }
  return { rows, summaries };
}

/** The pass's MACs as `sprig report` would count them, and what it did to the time. */
export function sinkTable(rows: readonly SinkRow[]): string {
  const lines = [
    "| backend | frames | GMAC without | GMAC with | MACs removed | ms without | ms with | time saved | saved / removed (>= 0.8) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.backend} | ${r.frames} | ${(r.withoutMacs / 1e9).toFixed(2)} | ${(r.withMacs / 1e9).toFixed(2)} | ${(100 * r.macsSaved).toFixed(1)}% (-${((r.withoutMacs - r.withMacs) / 1e9).toFixed(2)} GMAC) | ${r.withoutMs.toFixed(0)} | ${r.withMs.toFixed(0)} | ${(100 * r.timeSaved).toFixed(1)}% | ${(r.timeSaved / r.macsSaved).toFixed(2)} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = process.argv.slice(2) as BackendName[];
  const { ready, skipped } = await availableBackends(wanted.length > 0 ? wanted : ["onnx"]);
  for (const line of skipped) console.log(`skipped ${line}`);
  console.log(
    `${machineDescription()}; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  const { rows } = await benchSink(ready);
  console.log(sinkTable(rows));
}
