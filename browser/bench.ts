import { attentionGraphs, attentionInputs, costOf, type Graph, timeGraph } from "../src/browser.js";
import { browserBackend } from "./backends.js";
import type { BenchRow, BrowserBackend } from "./protocol.js";

/**
 * The attention benchmark of `sprig bench --op attention`, in the browser: one layer's
 * attention at the SViTT token count (196·T + 1 tokens, BEiT-base: 12 heads of 64),
 * block-sparse (local 1 + random 3, block 56) against dense, with seeded weights and inputs
 * (src/models/init.ts) and the token index as a run-time input (src/api/attention-bench.ts).
 * Each variant is compiled once, run once to warm up (shader compilation, texture
 * allocation), then timed `reps` times; the median is reported.
 */

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Sparse then dense at `frames` frames on `backend`; a variant that fails is reported. */
export async function benchAttention(
  backend: BrowserBackend,
  frames: number,
  reps: number,
): Promise<BenchRow> {
  const { dense, sparse, tokens } = attentionGraphs(frames, { tokenIndex: "input" });
  const inputs = attentionInputs(dense, frames);
  const macsRatio = costOf(sparse).totals.attentionMacs / costOf(dense).totals.attentionMacs;
  const errors: string[] = [];
  const attempt = async (variant: string, graph: Graph): Promise<number | null> => {
    try {
      return await timeGraph(await browserBackend(backend), graph, inputs, reps);
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
