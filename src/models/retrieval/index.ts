import { parseConfig, underField } from "../../config/schema.js";
import { GraphBuilder } from "../../ir/builder.js";
import { ConfigError } from "../../ir/errors.js";
import type { TensorRef } from "../../ir/graph.js";
import { i32Tensor } from "../../ir/tensor.js";
import { beitModel, pixelsInput } from "../beit.js";
import {
  BERT_BASE,
  type BertConfig,
  checkBertConfig,
  checkTextLength,
  firstToken,
  TEXT_MASK_FILL,
} from "../bert.js";
import { checkVisionSpec, type VisionModelSpec } from "../config.js";
import type {
  BuildOptions,
  CrossModalSparsity,
  ModelDefinition,
  ModelProgram,
  ModelSparsity,
} from "../definition.js";
import { checkCrossModal, fusionEncoder, visionOutputTokens } from "../fusion/index.js";
import { syntheticClip } from "../init.js";
import { DENSE_SPARSITY, visionPreset } from "../presets.js";
import { checkBatch, MAX_TEXT_LENGTH, syntheticText, textEncoder } from "../text/index.js";
import { describeVision, visionSparsity } from "../vision/index.js";
import { RETRIEVAL_FLAGS, retrievalSpecSchema } from "./schema.js";

/**
 * The whole SViTT retrieval model (SingularityRetrieval, models/model_retrieval.py), as
 * `evaluation()` in tasks/retrieval_utils.py runs it:
 *   video_embeds        = vision_layernorm(BeitModel(pixels).last_hidden_state)
 *   pooled_video_embeds = BeitModel(pixels).pooler_output   (before vision_layernorm)
 *   text_embeds         = BertModel(ids, mask, mode "text").last_hidden_state
 *   video_feat          = normalize(vision_proj(pooled_video_embeds))
 *   text_feat           = normalize(text_proj(text_embeds[:, 0]))
 *   sim_i2t             = video_feat text_featᵀ            (ITC; evaluation uses t = 1)
 *   itm_score(v, t)     = itm_head(BertModel(text_embeds[t], video_embeds[v], mode "fusion")[:, 0])[1]
 * The visual mask of the ITM pass is all ones (additive 0) and the released configs never
 * enable cross-modal pruning (their joint_encoder_args is never read), so crossModal is
 * null by default. Weight keys are the retrieval model's state_dict keys.
 *
 * The whole-model graph scores every (video, caption) pair with ITM, which is what
 * evaluation() does when k_test covers every candidate; `sprig retrieve` instead compiles
 * the parts (retrievalParts) and reranks each query's top k with ITM.
 */
export interface RetrievalModelSpec {
  /** The vision encoder; its batch is the number of videos. */
  readonly vision: VisionModelSpec;
  readonly text: BertConfig;
  /** Captions per batch. */
  readonly texts: number;
  readonly textLength: number;
  /** Width of the ITC projections (embed_dim). */
  readonly embedDim: number;
  readonly crossModal: CrossModalSparsity | null;
}

/** embed_dim of the released retrieval configs. */
export const EMBED_DIM = 256;

export function checkRetrievalSpec(spec: RetrievalModelSpec): RetrievalModelSpec {
  parseConfig(retrievalSpecSchema, spec);
  underField("vision", () => checkVisionSpec(spec.vision));
  checkBertConfig(spec.text);
  if (spec.text.encoderWidth !== spec.vision.model.hiddenSize) {
    throw new ConfigError(
      "text.encoderWidth",
      `is ${spec.text.encoderWidth} but the vision encoder's hidden size is ${spec.vision.model.hiddenSize}; they must match`,
    );
  }
  checkBatch("texts", spec.texts);
  checkTextLength(spec.text, spec.textLength, "textLength");
  if (!(Number.isInteger(spec.embedDim) && spec.embedDim >= 1 && spec.embedDim <= 1 << 16)) {
    throw new ConfigError(
      "embedDim",
      `must be an integer in [1, ${1 << 16}], got ${JSON.stringify(spec.embedDim)}`,
    );
  }
  checkCrossModal(spec.crossModal, spec.text);
  return spec;
}

function projectAndNormalize(
  b: GraphBuilder,
  x: TensorRef,
  scope: string,
  inFeatures: number,
  embedDim: number,
): TensorRef {
  const projected = b.withScope(scope, () =>
    b.add1(
      "linear",
      [x, b.weight("weight", [embedDim, inFeatures]), b.weight("bias", [embedDim])],
      {},
    ),
  );
  return b.add1("l2Normalize", [projected], { eps: 1e-12 }, { name: `${scope}.normalize` });
}

interface VideoSide {
  readonly videoEmbeds: TensorRef;
  readonly pooled: TensorRef;
  readonly videoFeat: TensorRef;
}

/** encode_image + the ITC projection, in stack "vision" under "vision_encoder". */
function videoSide(b: GraphBuilder, spec: RetrievalModelSpec, options: BuildOptions): VideoSide {
  const vision = spec.vision;
  const c = vision.model.hiddenSize;
  const pixels = pixelsInput(b, vision);
  const { lastHidden, pooled } = b.inStack("vision", () =>
    b.withScope("vision_encoder", () =>
      beitModel(b, pixels, vision, {
        diagnostics: options.diagnostics ?? false,
        outputPrefix: "vision.",
      }),
    ),
  );
  const videoEmbeds = b.withScope("vision_layernorm", () =>
    b.add1("layerNorm", [lastHidden, b.weight("weight", [c]), b.weight("bias", [c])], {
      eps: 1e-12,
    }),
  );
  const videoFeat = projectAndNormalize(b, pooled, "vision_proj", c, spec.embedDim);
  return { videoEmbeds, pooled, videoFeat };
}

interface TextSide {
  readonly textEmbeds: TensorRef;
  readonly additiveMask: TensorRef;
  readonly textFeat: TensorRef;
}

/** encode_text + the ITC projection, in stack "text" under "text_encoder". */
function textSide(b: GraphBuilder, spec: RetrievalModelSpec, options: BuildOptions): TextSide {
  const shape = [spec.texts, spec.textLength];
  const ids = b.input("input_ids", { dtype: "i32", shape });
  const mask = b.input("attention_mask", { dtype: "i32", shape });
  const { hidden, additive } = b.inStack("text", () =>
    b.withScope("text_encoder", () =>
      textEncoder(b, ids, mask, spec.text, {
        diagnostics: options.diagnostics ?? false,
        outputPrefix: "text.",
      }),
    ),
  );
  const textFeat = projectAndNormalize(
    b,
    firstToken(b, hidden),
    "text_proj",
    spec.text.hiddenSize,
    spec.embedDim,
  );
  return { textEmbeds: hidden, additiveMask: additive, textFeat };
}

function indexConstant(b: GraphBuilder, name: string, values: number[]): TensorRef {
  return b.constant(name, i32Tensor([values.length], Int32Array.from(values)));
}

/** The sparsity sites of the retrieval model: the vision encoder's and the fusion layers'. */
function retrievalSparsity(spec: RetrievalModelSpec): ModelSparsity {
  return { vision: visionSparsity(spec.vision), crossModal: spec.crossModal };
}

/**
 * The whole model: pixel_values [Bv, T, 3, S, S], input_ids and attention_mask [Bt, L] ->
 * video_embeds, pooled_video_embeds, text_embeds, video_feat, text_feat, sim_i2t [Bv, Bt],
 * itm_logits_i2t [Bv, Bt, 2], itm_scores_i2t [Bv, Bt] and itm_scores_t2i [Bt, Bv] (every
 * pair scored once, in video-major order, and read both ways).
 */
export function buildRetrievalModel(
  spec: RetrievalModelSpec,
  options: BuildOptions = {},
): ModelProgram {
  checkRetrievalSpec(spec);
  const videos = spec.vision.batch;
  const texts = spec.texts;
  const b = new GraphBuilder(`svitt_retrieval_${spec.vision.frames}f_${videos}x${texts}`);
  const video = videoSide(b, spec, options);
  const text = textSide(b, spec, options);
  const sim = b.add1("similarity", [video.videoFeat, text.textFeat], { scale: 1 }, { name: "itc" });

  // Every (video i, caption j) pair p = i * texts + j.
  const pairVideo: number[] = [];
  const pairText: number[] = [];
  for (let i = 0; i < videos; i++)
    for (let j = 0; j < texts; j++) {
      pairVideo.push(i);
      pairText.push(j);
    }
  const visualTokens = b.add1(
    "selectBatch",
    [video.videoEmbeds, indexConstant(b, "pairs.video", pairVideo)],
    {},
    { name: "itm.visual_tokens", role: "visualTokens" },
  );
  const textIndex = indexConstant(b, "pairs.text", pairText);
  const pairTextEmbeds = b.add1(
    "selectBatch",
    [text.textEmbeds, textIndex],
    {},
    { name: "itm.text" },
  );
  const pairTextMask = b.add1(
    "selectBatch",
    [text.additiveMask, textIndex],
    {},
    { name: "itm.text_mask" },
  );
  // evaluation() passes an all-ones visual mask, which adds 0 to every logit: no mask.
  const itm = b.inStack("text", () =>
    fusionEncoder(b, pairTextEmbeds, pairTextMask, visualTokens, null, spec.text, {
      diagnostics: options.diagnostics ?? false,
      outputPrefix: "fusion.",
    }),
  );
  const textMajor: number[] = [];
  for (let j = 0; j < texts; j++) for (let i = 0; i < videos; i++) textMajor.push(i * texts + j);
  const t2i = b.add1("selectBatch", [itm.score, indexConstant(b, "pairs.t2i", textMajor)], {});

  b.output("video_embeds", video.videoEmbeds);
  b.output("pooled_video_embeds", video.pooled);
  b.output("text_embeds", text.textEmbeds);
  b.output("video_feat", video.videoFeat);
  b.output("text_feat", text.textFeat);
  b.output("sim_i2t", sim);
  b.output("itm_logits_i2t", b.add1("reshape", [itm.logits], { shape: [videos, texts, 2] }));
  b.output("itm_scores_i2t", b.add1("reshape", [itm.score], { shape: [videos, texts] }));
  b.output("itm_scores_t2i", b.add1("reshape", [t2i], { shape: [texts, videos] }));
  return { graph: b.build(), sparsity: retrievalSparsity(spec) };
}

/** The retrieval model's parts, each its own graph with the retrieval model's weight keys. */
export interface RetrievalParts {
  /** pixel_values [Bv, ...] -> video_embeds, pooled_video_embeds, video_feat. */
  readonly video: ModelProgram;
  /** input_ids, attention_mask [Bt, L] -> text_embeds, text_feat. */
  readonly text: ModelProgram;
  /**
   * ITM for `pairs` pairs: video_embeds [P, Lv, Cv], text_embeds [P, L, Ct],
   * attention_mask i32 [P, L] -> itm_score [P], itm_logits [P, 2].
   */
  readonly itm: ModelProgram;
}

/**
 * The parts `sprig retrieve` and `sprig embed` compile: videos are encoded once each (in
 * batches of spec.vision.batch), captions once each (batches of spec.texts), and only the
 * reranked pairs go through the fusion encoder (batches of `pairs`).
 */
export function retrievalParts(spec: RetrievalModelSpec, pairs: number): RetrievalParts {
  checkRetrievalSpec(spec);
  checkBatch("pairs", pairs);
  const frames = spec.vision.frames;

  const vb = new GraphBuilder(`svitt_video_${frames}f`);
  const video = videoSide(vb, spec, {});
  vb.output("video_embeds", video.videoEmbeds);
  vb.output("pooled_video_embeds", video.pooled);
  vb.output("video_feat", video.videoFeat);

  const tb = new GraphBuilder(`svitt_text_${spec.textLength}t`);
  const text = textSide(tb, spec, {});
  tb.output("text_embeds", text.textEmbeds);
  tb.output("text_feat", text.textFeat);

  const ib = new GraphBuilder(`svitt_itm_${pairs}p`);
  const lv = visionOutputTokens(spec.vision);
  const visual = ib.input(
    "video_embeds",
    { dtype: "f32", shape: [pairs, lv, spec.vision.model.hiddenSize] },
    "visualTokens",
  );
  const textEmbeds = ib.input("text_embeds", {
    dtype: "f32",
    shape: [pairs, spec.textLength, spec.text.hiddenSize],
  });
  const textMask = ib.input("attention_mask", { dtype: "i32", shape: [pairs, spec.textLength] });
  const additive = ib.add1("additiveMask", [textMask], { fill: TEXT_MASK_FILL });
  const itm = ib.inStack("text", () =>
    fusionEncoder(ib, textEmbeds, additive, visual, null, spec.text, { diagnostics: false }),
  );
  ib.output("itm_score", itm.score);
  ib.output("itm_logits", itm.logits);

  return {
    video: {
      graph: vb.build(),
      sparsity: { vision: visionSparsity(spec.vision), crossModal: null },
    },
    text: { graph: tb.build(), sparsity: { vision: null, crossModal: null } },
    itm: { graph: ib.build(), sparsity: { vision: null, crossModal: spec.crossModal } },
  };
}

/** The full-size preset: BEiT-base + BERT-base, embed dim 256, max text length 64. */
export function retrievalPreset(
  frames: number,
  variant: "svitt" | "dense",
  layers?: number,
): RetrievalModelSpec {
  return {
    vision: visionPreset(frames, variant, 1, layers),
    text: BERT_BASE,
    texts: 1,
    textLength: MAX_TEXT_LENGTH,
    embedDim: EMBED_DIM,
    crossModal: null,
  };
}

export const retrievalModel: ModelDefinition<RetrievalModelSpec> = {
  name: "retrieval",
  schema: retrievalSpecSchema,
  flags: RETRIEVAL_FLAGS,
  framesPath: "vision.frames",
  layersPath: "vision.model.numLayers",
  summary: "the whole SViTT retrieval model: ITC similarities and ITM scores for videos x captions",
  checkpointPrefix: "",
  preset: ({ frames, variant, layers }) => retrievalPreset(frames, variant, layers),
  check: checkRetrievalSpec,
  dense: (spec) => ({
    ...spec,
    vision: { ...spec.vision, sparsity: DENSE_SPARSITY },
    crossModal: null,
  }),
  describe: (spec) =>
    `SViTT retrieval model (${describeVision(spec.vision)}; BERT ${spec.text.numLayers} layers, fusion from ${spec.text.fusionLayer}), ${spec.vision.batch} video${spec.vision.batch === 1 ? "" : "s"} x ${spec.texts} caption${spec.texts === 1 ? "" : "s"}`,
  build: buildRetrievalModel,
  syntheticInputs: (graph, spec, seed) => ({
    ...syntheticClip(graph, seed),
    ...syntheticText(spec.texts, spec.textLength, spec.text.vocabSize, seed),
  }),
};
