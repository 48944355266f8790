/**
 * The full vision encoder, SViTT against dense, per backend (issue 3), with the backend's
 * own 2-D matmul rate (bench/matmul.bench.ts) measured in the same benny suite as the
 * yardstick for efficiency: encoder GFLOP/s over matmul GFLOP/s.
 *
 *   npx tsx bench/encoder.bench.ts [backend ...]     (8 frames)
 */
import {
  type BackendName,
  compileVision,
  syntheticClip,
  type Variant,
  visionPreset,
} from "../src/index.js";
import { availableBackends, graphCase } from "./common.js";
import { type BenchCase, markdownTable, runSuite, type SuiteSummary } from "./harness.js";
import { matmulCaseName, matmulGraph } from "./matmul.bench.js";

export interface EncoderRow {
  readonly backend: string;
  readonly frames: number;
  readonly svittMs: number;
  readonly denseMs: number;
  readonly svittMacs: number;
  readonly denseMacs: number;
  readonly svittGflops: number;
  readonly denseGflops: number;
  readonly matmulGflops: number;
}

const caseName = (backend: string, frames: number, variant: Variant) =>
  `encoder ${backend} ${frames}f ${variant}`;

export async function benchEncoder(
  backends: readonly BackendName[],
  frames: readonly number[] = [8],
  options: { minSamples?: number } = {},
): Promise<{ summaries: SuiteSummary[]; rows: EncoderRow[] }> {
  const summaries: SuiteSummary[] = [];
  const rows: EncoderRow[] = [];
  const matmul = matmulGraph();
  for (const backend of backends) {
    for (const f of frames) {
      const cases: BenchCase[] = [
        graphCase(matmulCaseName(backend), backend, matmul, syntheticClip(matmul, 0)),
      ];
      for (const variant of ["svitt", "dense"] as const) {
        const { graph, cost } = compileVision(visionPreset(f, variant));
        cases.push(
          graphCase(
            caseName(backend, f, variant),
            backend,
            graph,
            syntheticClip(graph, 0),
            cost.totals.macs,
          ),
        );
      }
      const summary = await runSuite(`encoder-${backend}-${f}f`, cases, {
        minSamples: options.minSamples ?? 3,
        maxTime: 5,
      });
      summaries.push(summary);
      const find = (name: string) => summary.cases.find((c) => c.name === name)!;
      const svitt = find(caseName(backend, f, "svitt"));
      const dense = find(caseName(backend, f, "dense"));
      const gflops = (macs: number, ms: number) => (2 * macs) / (ms / 1000) / 1e9;
      const svittMacs = cases[1]!.macs!;
      const denseMacs = cases[2]!.macs!;
      rows.push({
        backend,
        frames: f,
        svittMs: svitt.medianMs,
        denseMs: dense.medianMs,
        svittMacs,
        denseMacs,
        svittGflops: gflops(svittMacs, svitt.medianMs),
        denseGflops: gflops(denseMacs, dense.medianMs),
        matmulGflops: find(matmulCaseName(backend)).gflops!,
      });
    }
  }
  return { summaries, rows };
}

/** Speed-up (issue 3 asks >= 1.8x at 8 frames) and efficiency (>= 50% of matmul). */
export function encoderTable(rows: readonly EncoderRow[]): string {
  const lines = [
    "| backend | frames | SViTT ms | dense ms | speed-up | MAC ratio | SViTT GFLOP/s | dense GFLOP/s | 2-D matmul GFLOP/s | SViTT efficiency |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.backend} | ${r.frames} | ${r.svittMs.toFixed(0)} | ${r.denseMs.toFixed(0)} | ${(r.denseMs / r.svittMs).toFixed(2)}x | ${(r.denseMacs / r.svittMacs).toFixed(2)}x | ${r.svittGflops.toFixed(1)} | ${r.denseGflops.toFixed(1)} | ${r.matmulGflops.toFixed(1)} | ${((100 * r.svittGflops) / r.matmulGflops).toFixed(0)}% |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = process.argv.slice(2) as BackendName[];
  const { ready, skipped } = await availableBackends(
    wanted.length > 0 ? wanted : ["onnx", "tfjs-wasm"],
  );
  for (const line of skipped) console.log(`skipped ${line}`);
  const { summaries, rows } = await benchEncoder(ready);
  for (const summary of summaries) console.log(`${markdownTable(summary)}\n`);
  console.log(encoderTable(rows));
}
