/**
 * The seeded graphs of the parity suite (parity.test.ts): small compiled models with seeded
 * weights and inputs, small enough for the reference backend.
 *
 * Vision: the small SViTT encoder of the former per-backend parity files (SMALL_BEIT:
 * hidden 64, 4 heads, 2 layers, 2 frames of 32 x 32 in 8 x 8 patches -> window 2x4x4, 32
 * local tokens; block 8, local 1 + random 1, keep 0.7 after layer 0 -> 23 tokens, so layer 1
 * has a padded block), in every variant those files checked.
 *
 * Video-text: the text encoder, the fusion encoder with cross-modal pruning, and the whole
 * retrieval model, each a released preset (MODELS.<name>.preset) edited down to SMALL_BERT.
 */
import { compileModel } from "../../src/api/compile.js";
import type { Graph } from "../../src/ir/graph.js";
import type { PaddingMode } from "../../src/ir/pattern.js";
import type { HostTensor } from "../../src/ir/tensor.js";
import type { BertConfig } from "../../src/models/bert.js";
import type { VisionModelSpec } from "../../src/models/config.js";
import type { ModelDefinition } from "../../src/models/definition.js";
import { type FusionModelSpec, visionOutputTokens } from "../../src/models/fusion/index.js";
import { MODELS } from "../../src/models/index.js";
import { initWeights } from "../../src/models/init.js";
import { visionPreset } from "../../src/models/presets.js";
import type { RetrievalModelSpec } from "../../src/models/retrieval/index.js";
import type { TextModelSpec } from "../../src/models/text/index.js";
import type { TokenOrderKind } from "../../src/models/token-order.js";
import { SMALL_BEIT } from "../support/small-beit.js";

export interface SeededGraph {
  readonly graph: Graph;
  readonly weights: Map<string, HostTensor>;
  readonly inputs: Record<string, HostTensor>;
}

export interface ParityGraph {
  /** Test name, e.g. "vision: sparse, padding masked". */
  readonly name: string;
  /** Whether the compiled graph has block-sparse attention, and token selection (topK). */
  readonly blockSparse: boolean;
  readonly tokenSelection: boolean;
  readonly build: () => SeededGraph;
}

interface VisionVariant {
  readonly batch?: number;
  readonly padding?: PaddingMode;
  readonly perHead?: boolean;
  readonly blockSize?: number;
  readonly tokenOrder?: TokenOrderKind;
  /** "dense": no block-sparse attention (tokens are still dropped unless `tokens` is false). */
  readonly attention?: "sparse" | "dense";
  /** Token dropping (keep 0.7 after layer 0); default on. */
  readonly tokens?: boolean;
}

/** The small SViTT vision spec (module comment) in one variant. */
export function smallVision(variant: VisionVariant = {}): VisionModelSpec {
  return {
    model: SMALL_BEIT,
    frames: 2,
    batch: variant.batch ?? 1,
    sparsity: {
      attention:
        variant.attention === "dense"
          ? null
          : {
              blockSize: variant.blockSize ?? 8,
              local: 1,
              random: 1,
              seed: 0,
              perHead: variant.perHead ?? false,
              padding: variant.padding ?? "reference",
            },
      tokens: variant.tokens === false ? null : { keepRate: 0.7, dropAfter: [0] },
      tokenOrder: variant.tokenOrder ?? "none",
    },
  };
}

/**
 * The small BERT of the video-text graphs: hidden 32, 4 heads (head width 8), FFN 64, 4
 * layers of which the last two (fusionLayer 2) cross-attend; vocabulary 100, 16 positions;
 * the visual tokens are 64 wide, SMALL_BEIT's hidden size, so that the retrieval model's
 * fusion layers read its vision encoder. Everything else as BERT-base.
 */
export const SMALL_BERT: BertConfig = {
  ...MODELS.text.preset({ frames: 2, variant: "svitt" }).text,
  vocabSize: 100,
  hiddenSize: 32,
  numHeads: 4,
  numLayers: 4,
  intermediateSize: 64,
  maxPositions: 16,
  fusionLayer: 2,
  encoderWidth: SMALL_BEIT.hiddenSize,
};

/** The released presets edited down to the small sizes. */
const PRESET = { frames: 2, variant: "svitt" } as const;

/** Text encoder: 2 captions of 8 tokens through the 2 text-only layers. */
export const SMALL_TEXT: TextModelSpec = {
  ...MODELS.text.preset(PRESET),
  text: SMALL_BERT,
  batch: 2,
  textLength: 8,
};

/**
 * Fusion encoder + ITM head with text-guided pruning: fusionLayer 1, so layers 1-3
 * cross-attend; keep 0.5 after layers 1 and 2 drops the 1 + 32 visual tokens of the small
 * vision encoder (dense, 2 frames) to 1 + 16, then 1 + 8.
 */
export const SMALL_FUSION: FusionModelSpec = {
  ...MODELS.fusion.preset(PRESET),
  text: { ...SMALL_BERT, fusionLayer: 1 },
  batch: 2,
  textLength: 8,
  visualTokens: visionOutputTokens(smallVision({ tokens: false })),
  crossModal: { keepRate: 0.5, layers: [1, 2] },
};

/**
 * The whole retrieval model: 2 videos (the small SViTT encoder: block-sparse, keep 0.7
 * after layer 0) x 3 captions of 8 tokens, ITC projections to 16, and every pair scored
 * by the 2 fusion layers and the ITM head; cross-modal pruning off, as released.
 */
export const SMALL_RETRIEVAL: RetrievalModelSpec = {
  ...MODELS.retrieval.preset(PRESET),
  vision: smallVision({ batch: 2 }),
  text: SMALL_BERT,
  texts: 3,
  textLength: 8,
  embedDim: 16,
};

/** compileModel (with or without diagnostic outputs) + seeded weights and synthetic inputs. */
function seeded<Spec>(
  model: ModelDefinition<Spec>,
  spec: Spec,
  seeds: { readonly weights: number; readonly inputs: number },
  diagnostics: boolean,
): SeededGraph {
  const { graph } = compileModel(model, spec, { diagnostics });
  return {
    graph,
    weights: initWeights(graph, seeds.weights),
    inputs: model.syntheticInputs(graph, spec, seeds.inputs),
  };
}

type VisionEntry = readonly [name: string, variant: VisionVariant];

/** Former onnx parity graphs (final outputs only), and the gpujs ones they coincide with. */
const ONNX_GRAPHS: readonly VisionEntry[] = [
  ["sparse, padding reference", {}],
  ["sparse, padding masked", { padding: "masked" }],
  ["sparse, per-head layouts, padding reference", { perHead: true }],
  ["sparse, per-head layouts, padding masked", { perHead: true, padding: "masked" }],
  // gpujs's "padding reference, shared layouts, block 8" is this graph (it used seed 7).
  ["sparse, batch 2", { batch: 2 }],
  // gpujs's "padding masked, per-head layouts, block 8" is this graph (it used seed 7).
  ["sparse, batch 2, per-head, masked", { batch: 2, perHead: true, padding: "masked" }],
  ["sparse, z-curve token order", { tokenOrder: "zcurve" }],
  ["dense (no sparsity)", { attention: "dense", tokens: false }],
  ["dense (no sparsity), batch 2", { attention: "dense", tokens: false, batch: 2 }],
];

/** Former tfjs parity graphs: with diagnostic outputs. */
const TFJS_GRAPHS: readonly VisionEntry[] = [
  ["sparse, padding reference", {}],
  ["sparse, padding masked", { padding: "masked" }],
  ["sparse, per-head layouts", { perHead: true }],
  ["sparse, batch 2", { batch: 2 }],
  ["dense attention, tokens dropped", { attention: "dense" }],
];

/** Former gpujs parity graphs not already above: batch 2. */
const GPUJS_GRAPHS: readonly VisionEntry[] = [
  ["sparse, batch 2, per-head layouts", { batch: 2, perHead: true }],
  // 32 local tokens in blocks of 6: the last block is padded (2 real tokens, 4 padding).
  ["sparse, batch 2, per-head layouts, block 6", { batch: 2, perHead: true, blockSize: 6 }],
  ["sparse, batch 2, padding masked, block 6", { batch: 2, padding: "masked", blockSize: 6 }],
];

function visionGraphs(
  entries: readonly VisionEntry[],
  prefix: string,
  seeds: { readonly weights: number; readonly inputs: number },
  diagnostics: boolean,
): ParityGraph[] {
  return entries.map(([name, variant]) => ({
    name: `${prefix}${name}`,
    blockSparse: variant.attention !== "dense",
    tokenSelection: variant.tokens !== false,
    build: () => seeded(MODELS.vision, smallVision(variant), seeds, diagnostics),
  }));
}

/**
 * The released SViTT preset at 1 and 2 frames: BEiT-base's token counts, block 56, local 1
 * + random 3, the curriculum's drops (none for one image; after 3, 6, 9 at 2 frames, where
 * layers 10-11 have 3 blocks and rows repeat a block as the reference does), at a narrow
 * width so that every backend runs the 12 layers quickly. Its patterns are the preset's.
 */
function presetAtFrames(frames: number): VisionModelSpec {
  const preset = visionPreset(frames);
  return {
    ...preset,
    model: { ...preset.model, hiddenSize: 48, numHeads: 4, intermediateSize: 96 },
  };
}

export const PARITY_GRAPHS: readonly ParityGraph[] = [
  ...[1, 2].map((frames) => ({
    name: `vision: the SViTT preset's pattern at ${frames} frame${frames === 1 ? "" : "s"}`,
    blockSparse: true,
    tokenSelection: frames > 1,
    build: () =>
      seeded(MODELS.vision, presetAtFrames(frames), { weights: 21, inputs: 22 + frames }, false),
  })),
  ...visionGraphs(ONNX_GRAPHS, "vision: ", { weights: 3, inputs: 4 }, false),
  ...visionGraphs(TFJS_GRAPHS, "vision with diagnostics: ", { weights: 1, inputs: 2 }, true),
  ...visionGraphs(GPUJS_GRAPHS, "vision: ", { weights: 7, inputs: 7 }, false),
  {
    name: "text encoder",
    blockSparse: false,
    tokenSelection: false,
    build: () => seeded(MODELS.text, SMALL_TEXT, { weights: 11, inputs: 12 }, true),
  },
  {
    name: "fusion + ITM, cross-modal keep 0.5 after layers 1 and 2",
    blockSparse: false,
    tokenSelection: true,
    build: () => seeded(MODELS.fusion, SMALL_FUSION, { weights: 13, inputs: 14 }, true),
  },
  {
    name: "retrieval model",
    blockSparse: true,
    tokenSelection: true,
    build: () => seeded(MODELS.retrieval, SMALL_RETRIEVAL, { weights: 17, inputs: 18 }, true),
  },
];
