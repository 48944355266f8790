/**
 * Named pipelines: the pass lists that turn a dense model graph into a compiled one.
 * Each step says why it is where it is.
 */
import type { PaddingMode } from "../src/ir/pattern.js";
import type { SparsityConfig } from "../src/models/config.js";
import type { ModelSparsity } from "../src/models/definition.js";
import type { Pass } from "../src/pass-manager.js";
import type { Pattern } from "../src/patterns/language.js";
import { parsePattern } from "../src/patterns/library/index.js";
import { analyzeCost } from "./analyze-cost.js";
import { eliminateDeadCode } from "./eliminate-dead-code.js";
import { pruneTokens } from "./prune-tokens.js";
import { pruneVisualTokens } from "./prune-visual-tokens.js";
import { quantizeLinear } from "./quantize-linear.js";
import { reorderTokens } from "./reorder-tokens.js";
import { sinkTokenSelection } from "./sink-token-selection.js";
import { type PatternSource, sparsifyAttention } from "./sparsify-attention.js";

export interface VisionPipelineOptions {
  readonly sparsity: SparsityConfig;
  readonly window: readonly [number, number, number];
  readonly globalTokens: number;
  /** Explicit random blocks per layer (conformance cases); seeded draws elsewhere. */
  readonly randomBlocks?: ReadonlyMap<number, readonly (readonly number[])[]>;
  /** A pattern of the language in place of the spec's (see ModelPipelineOptions). */
  readonly attentionPattern?: Pattern;
}

/** The SViTT vision pipeline; with a dense SparsityConfig it only cleans up and costs. */
export function visionPipeline(options: VisionPipelineOptions): Pass[] {
  return [...visionSparsityPasses(options), ...finishingPasses()];
}

export interface ModelPipelineOptions {
  /** Explicit random blocks per vision layer (conformance cases); seeded draws elsewhere. */
  readonly randomBlocks?: ReadonlyMap<number, readonly (readonly number[])[]>;
  /**
   * A pattern of the language (src/patterns/language.ts) for the vision encoder's attention
   * in place of the spec's pattern, for patterns a spec string cannot name (a user's own
   * predicates); the spec's blockSize, seed, perHead and padding still apply, and its
   * attention must be on.
   */
  readonly attentionPattern?: Pattern;
}

/**
 * The pipeline of any model: the sparsity its definition declares (ModelSparsity), vision
 * encoder first, then the fusion layers' visual token pruning, then clean-up and cost.
 */
export function modelPipeline(sparsity: ModelSparsity, options: ModelPipelineOptions = {}): Pass[] {
  const passes: Pass[] = [];
  if (sparsity.vision !== null) {
    passes.push(
      ...visionSparsityPasses({
        ...sparsity.vision,
        ...(options.randomBlocks ? { randomBlocks: options.randomBlocks } : {}),
        ...(options.attentionPattern ? { attentionPattern: options.attentionPattern } : {}),
      }),
    );
  }
  // After the vision passes: the fusion layers read the (pruned) vision encoder's output.
  const cross = sparsity.crossModal;
  if (cross !== null && cross.keepRate < 1 && cross.layers.length > 0) {
    passes.push(pruneVisualTokens({ keepRate: cross.keepRate, layers: cross.layers }));
  }
  // Precision after every sparsity pass: a quantised linear is no longer per-token, so the
  // token selection must have sunk first. The vision encoder's layers only (stack "vision"
  // in a graph with several, none in its own graph).
  if (sparsity.vision?.precision === "int8")
    passes.push(quantizeLinear({ stacks: [null, "vision"] }));
  passes.push(...finishingPasses());
  return passes;
}

function finishingPasses(): Pass[] {
  return [
    // Rewrites leave unused nodes behind (e.g. probabilities nobody reads).
    eliminateDeadCode(),
    // Cost last, on the graph that will run.
    analyzeCost(),
  ];
}

/** The vision encoder's sparsity passes, in the order their contracts need. */
function visionSparsityPasses(options: VisionPipelineOptions): Pass[] {
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
      // 2b. The kept set needs only the CLS attention: the rest of a drop layer runs on it.
      sinkTokenSelection(),
    );
  }
  // 3. Edge sparsity, layout per layer from its (possibly pruned) token count.
  if (sparsity.attention !== null) {
    const a = sparsity.attention;
    const padding: PaddingMode = a.padding;
    // 3a. A pattern spec (the pattern language) in place of SViTT's local + random blocks.
    const language =
      options.attentionPattern ??
      (a.pattern === undefined
        ? undefined
        : parsePattern(a.pattern, "sparsity.attention.pattern", {
            svitt: { local: a.local, random: a.random },
          }));
    const pattern: PatternSource =
      language === undefined
        ? {
            kind: "svitt",
            blockSize: a.blockSize,
            local: a.local,
            random: a.random,
            seed: a.seed,
            perHead: a.perHead,
            ...(options.randomBlocks ? { randomBlocks: options.randomBlocks } : {}),
          }
        : {
            kind: "pattern",
            blockSize: a.blockSize,
            pattern: language,
            seed: a.seed,
            perHead: a.perHead,
            grid: options.window,
          };
    passes.push(sparsifyAttention({ pattern, padding }));
  }
  return passes;
}
