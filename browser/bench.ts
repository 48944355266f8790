import { attentionGraphs } from "../src/api/attention-bench.js";
import { median } from "../src/api/run.js";
import { analyzeCost } from "../src/cost.js";
import type { Graph } from "../src/ir/graph.js";
import { initWeights, syntheticClip } from "../src/models/init.js";
import { browserBackend } from "./backends.js";
import type { BenchRow, BrowserBackend } from "./protocol.js";

/**
 * The attention benchmark of `sprig bench --op attention`, in the browser: one layer's
 * attention at the SViTT token count (196·T + 1 tokens, BEiT-base: 12 heads of 64),
 * block-sparse (local 1 + random 3, block 56) against dense, with seeded weights and inputs
 * (src/models/init.ts). Each variant is compiled once, run once to warm up (shader
 * compilation, texture allocation), then timed `reps` times; the median is reported.
 */

async function timeGraph(backend: BrowserBackend, graph: Graph, reps: number): Promise<number> {
  const executable = await browserBackend(backend).compile(graph, initWeights(graph, 0));
  try {
    const inputs = syntheticClip(graph, 0);
    await executable.run(inputs);
    const samples: number[] = [];
    for (let i = 0; i < reps; i++) {
      const start = performance.now();
      await executable.run(inputs);
      samples.push(performance.now() - start);
    }
    return median(samples);
  } finally {
    executable.dispose();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Sparse then dense at `frames` frames on `backend`; a variant that fails is reported. */
export async function benchAttention(
  backend: BrowserBackend,
  frames: number,
  reps: number,
): Promise<BenchRow> {
  const { dense, sparse } = attentionGraphs(frames);
  const tokens = dense.nodes.find((n) => n.op === "input")!.outputs[0]!.shape[1]!;
  const macsRatio =
    analyzeCost(sparse).totals.attentionMacs / analyzeCost(dense).totals.attentionMacs;
  const errors: string[] = [];
  const attempt = async (variant: string, graph: Graph): Promise<number | null> => {
    try {
      return await timeGraph(backend, graph, reps);
    } catch (error) {
      errors.push(`${variant}: ${messageOf(error)}`);
      return null;
    }
  };
  const sparseMs = await attempt("sparse", sparse);
  const denseMs = await attempt("dense", dense);
  return {
    backend,
    frames,
    tokens,
    sparse_ms: sparseMs,
    dense_ms: denseMs,
    ratio: sparseMs === null || denseMs === null ? null : sparseMs / denseMs,
    macs_ratio: macsRatio,
    reps,
    error: errors.length === 0 ? null : errors.join("; "),
  };
}
