import { sparsifyAttention } from "../../passes/sparsify-attention.js";
import { analyzeCost } from "../cost.js";
import { SprigError } from "../ir/errors.js";
import type { Graph } from "../ir/graph.js";
import { buildAttentionOnly } from "../models/beit.js";
import { BEIT_BASE, type BeitConfig } from "../models/config.js";
import { initWeights, syntheticClip } from "../models/init.js";
import { SVITT_BLOCK_SIZE } from "../models/presets.js";
import { runPasses } from "../pass-manager.js";
import { median, pickBackend } from "./run.js";

/**
 * One layer's attention at the SViTT token count (196·T + 1 tokens), block-sparse (local 1
 * + random 3, block 56) against dense, on one backend, timed back to back in one process.
 */
export interface AttentionBenchResult {
  readonly backend: string;
  readonly frames: number;
  readonly tokens: number;
  readonly sparseMs: number;
  readonly denseMs: number;
  readonly sparseMacs: number;
  readonly denseMacs: number;
  readonly reps: number;
}

export function attentionGraphs(
  frames: number,
  model: BeitConfig = BEIT_BASE,
): { dense: Graph; sparse: Graph } {
  const dense = buildAttentionOnly(model, frames);
  const sparse = runPasses(
    dense,
    [
      sparsifyAttention({
        pattern: {
          kind: "svitt",
          blockSize: SVITT_BLOCK_SIZE,
          local: 1,
          random: 3,
          seed: 0,
          perHead: false,
        },
        padding: "reference",
      }),
    ],
    { debug: 0 },
  ).graph;
  return { dense, sparse };
}

export async function benchAttention(options: {
  frames: number;
  backend?: string;
  reps?: number;
  threads?: number;
}): Promise<AttentionBenchResult> {
  const reps = options.reps ?? 5;
  if (!(Number.isInteger(reps) && reps >= 1))
    throw new SprigError(`reps must be an integer >= 1, got ${reps}`);
  const backend = await pickBackend(options.backend);
  const { dense, sparse } = attentionGraphs(options.frames);
  const time = async (graph: Graph): Promise<number> => {
    const executable = await backend.compile(
      graph,
      initWeights(graph, 0),
      options.threads === undefined ? {} : { threads: options.threads },
    );
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
  };
  // Interleave the variants' measurement order by running sparse first, then dense.
  const sparseMs = await time(sparse);
  const denseMs = await time(dense);
  return {
    backend: backend.name,
    frames: options.frames,
    tokens: dense.nodes.find((n) => n.op === "input")!.outputs[0]!.shape[1]!,
    sparseMs,
    denseMs,
    sparseMacs: analyzeCost(sparse).totals.attentionMacs,
    denseMacs: analyzeCost(dense).totals.attentionMacs,
    reps,
  };
}
