/**
 * Named pipelines: the pass lists that turn a dense model graph into a compiled one.
 * Each step says why it is where it is.
 */
import type { PaddingMode } from "../src/ir/pattern.js";
import type { SparsityConfig } from "../src/models/config.js";
import type { Pass } from "../src/pass-manager.js";
import { analyzeCost } from "./analyze-cost.js";
import { eliminateDeadCode } from "./eliminate-dead-code.js";
import { pruneTokens } from "./prune-tokens.js";
import { reorderTokens } from "./reorder-tokens.js";
import { sparsifyAttention } from "./sparsify-attention.js";

export interface VisionPipelineOptions {
  readonly sparsity: SparsityConfig;
  readonly window: readonly [number, number, number];
  readonly globalTokens: number;
  /** Explicit random blocks per layer (conformance cases); seeded draws elsewhere. */
  readonly randomBlocks?: ReadonlyMap<number, readonly (readonly number[])[]>;
}

/** The SViTT vision pipeline; with a dense SparsityConfig it only cleans up and costs. */
export function visionPipeline(options: VisionPipelineOptions): Pass[] {
  const { sparsity } = options;
  const passes: Pass[] = [];
  // 1. Reorder first: later passes and the token index then speak in curve order.
  if (sparsity.tokenOrder !== "none") {
    passes.push(
      reorderTokens({
        kind: sparsity.tokenOrder,
        window: options.window,
        globalTokens: options.globalTokens,
      }),
    );
  }
  // 2. Drop tokens before sparsifying, so each layer's block layout fits its token count.
  if (sparsity.tokens !== null) {
    passes.push(
      pruneTokens({ keepRate: sparsity.tokens.keepRate, afterLayers: sparsity.tokens.dropAfter }),
    );
  }
  // 3. Edge sparsity, layout per layer from its (possibly pruned) token count.
  if (sparsity.attention !== null) {
    const a = sparsity.attention;
    const padding: PaddingMode = a.padding;
    passes.push(
      sparsifyAttention({
        pattern: {
          kind: "svitt",
          blockSize: a.blockSize,
          local: a.local,
          random: a.random,
          seed: a.seed,
          perHead: a.perHead,
          ...(options.randomBlocks ? { randomBlocks: options.randomBlocks } : {}),
        },
        padding,
      }),
    );
  }
  // 4. Rewrites leave unused nodes behind (e.g. probabilities nobody reads).
  passes.push(eliminateDeadCode());
  // 5. Cost last, on the graph that will run.
  passes.push(analyzeCost());
  return passes;
}
