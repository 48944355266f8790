import { parseConfig } from "../../config/schema.js";
import { GraphBuilder } from "../../ir/builder.js";
import { ConfigError } from "../../ir/errors.js";
import type { TensorRef } from "../../ir/graph.js";
import { f32Tensor, type HostTensor, i32Tensor, numElements } from "../../ir/tensor.js";
import { Rng } from "../../patterns/random.js";
import {
  additiveMask,
  BERT_BASE,
  type BertConfig,
  checkBertConfig,
  checkTextLength,
  fusionLayers,
  itmHead,
  TEXT_MASK_FILL,
  VISUAL_MASK_FILL,
} from "../bert.js";
import { checkKeepRate, keptTokenCount, type VisionModelSpec } from "../config.js";
import type { CrossModalSparsity, ModelDefinition } from "../definition.js";
import { visionPreset } from "../presets.js";
import { checkBatch, MAX_TEXT_LENGTH, syntheticText } from "../text/index.js";
import { FUSION_FLAGS, fusionSpecSchema } from "./schema.js";

/** Everything needed to compile the fusion encoder and ITM head. */
export interface FusionModelSpec {
  readonly text: BertConfig;
  /** (video, caption) pairs per batch. */
  readonly batch: number;
  readonly textLength: number;
  /** Visual tokens each pair cross-attends to, CLS included. */
  readonly visualTokens: number;
  readonly crossModal: CrossModalSparsity | null;
}

/** Checks the cross-modal pruning settings against the BERT layers. */
export function checkCrossModal(
  crossModal: CrossModalSparsity | null,
  text: BertConfig,
): CrossModalSparsity | null {
  if (crossModal === null) return null;
  checkKeepRate("crossModal.keepRate", crossModal.keepRate);
  if (!Array.isArray(crossModal.layers)) {
    throw new ConfigError(
      "crossModal.layers",
      `must be a list of layer indices, got ${JSON.stringify(crossModal.layers)}`,
    );
  }
  const seen = new Set<number>();
  for (const layer of crossModal.layers) {
    if (!(Number.isInteger(layer) && layer >= text.fusionLayer && layer < text.numLayers)) {
      throw new ConfigError(
        "crossModal.layers",
        `layer ${JSON.stringify(layer)} is not a fusion layer: allowed ${text.fusionLayer}..${text.numLayers - 1} (absolute BERT indices, as token_drop_loc)`,
      );
    }
    if (seen.has(layer)) throw new ConfigError("crossModal.layers", `layer ${layer} listed twice`);
    seen.add(layer);
  }
  return crossModal;
}

export function checkFusionSpec(spec: FusionModelSpec): FusionModelSpec {
  parseConfig(fusionSpecSchema, spec);
  checkBertConfig(spec.text);
  checkBatch("batch", spec.batch);
  checkTextLength(spec.text, spec.textLength, "textLength");
  if (
    !(Number.isInteger(spec.visualTokens) && spec.visualTokens >= 2 && spec.visualTokens <= 1 << 20)
  ) {
    throw new ConfigError(
      "visualTokens",
      `must be an integer in [2, ${1 << 20}] (visual CLS + at least one token), got ${JSON.stringify(spec.visualTokens)}`,
    );
  }
  checkCrossModal(spec.crossModal, spec.text);
  return spec;
}

/** Tokens leaving a vision encoder: CLS + the local tokens left after every drop. */
export function visionOutputTokens(spec: VisionModelSpec): number {
  const side = spec.model.imageSize / spec.model.patchSize;
  let local = spec.frames * side * side;
  const tokens = spec.sparsity.tokens;
  for (let i = 0; tokens !== null && i < tokens.dropAfter.length; i++) {
    local = keptTokenCount(tokens.keepRate, local);
  }
  return spec.model.numClsTokens + local;
}

/**
 * The fusion layers and ITM head under the caller's scopes: text hidden states [P, Lt, C]
 * and additive text mask [P, Lt] cross-attend to visual tokens [P, Lv, W] (additive visual
 * mask or null) through BERT layers [fusionLayer, numLayers) under "text_encoder", then
 * itm_head on the fused [CLS]. Visual tokens and mask are tagged for prune-visual-tokens.
 */
export function fusionEncoder(
  b: GraphBuilder,
  text: TensorRef,
  textMask: TensorRef,
  visualTokens: TensorRef,
  visualMask: TensorRef | null,
  config: BertConfig,
  options: { diagnostics: boolean; outputPrefix?: string },
): { fused: TensorRef; logits: TensorRef; score: TensorRef } {
  const fused = b.withScope("text_encoder", () =>
    fusionLayers(b, text, textMask, { tokens: visualTokens, mask: visualMask }, config, options),
  );
  const { logits, score } = itmHead(b, fused, config);
  return { fused, logits, score };
}

/**
 * SViTT's multimodal encoder: BERT's fusion layers (self-attention, cross-attention to the
 * visual tokens, feed-forward) and the ITM head, as BertModel mode "fusion" + itm_head.
 * Inputs as the reference's text_encoder call: encoder_embeds f32 [B, Lt, C],
 * attention_mask i32 [B, Lt], encoder_hidden_states f32 [B, Lv, W], encoder_attention_mask
 * i32 [B, Lv]; outputs last_hidden_state, itm_logits [B, 2], itm_score [B] (the raw
 * class-1 logit). Weight keys are the retrieval model's (text_encoder.*, itm_head.*).
 */
export const fusionModel: ModelDefinition<FusionModelSpec> = {
  name: "fusion",
  schema: fusionSpecSchema,
  flags: FUSION_FLAGS,
  framesPath: null,
  layersPath: null,
  summary:
    "SViTT multimodal encoder (BERT fusion layers + ITM head): text x video tokens -> match score",
  checkpointPrefix: "",
  preset: ({ frames, variant }) => ({
    text: BERT_BASE,
    batch: 1,
    textLength: MAX_TEXT_LENGTH,
    visualTokens: visionOutputTokens(visionPreset(frames, variant)),
    crossModal: null,
  }),
  check: checkFusionSpec,
  dense: (spec) => ({ ...spec, crossModal: null }),
  describe: (spec) =>
    `BERT fusion encoder + ITM head (${spec.text.numLayers - spec.text.fusionLayer} layers), ${spec.batch} pair${spec.batch === 1 ? "" : "s"}, ${spec.textLength} text x ${spec.visualTokens} visual tokens${spec.crossModal === null ? "" : `, visual keep ${spec.crossModal.keepRate} after layers ${spec.crossModal.layers.join(",")}`}`,
  build: (spec, options = {}) => {
    checkFusionSpec(spec);
    const { text: config, batch, textLength, visualTokens } = spec;
    const b = new GraphBuilder(`bert_fusion_${textLength}x${visualTokens}`);
    const text = b.input("encoder_embeds", {
      dtype: "f32",
      shape: [batch, textLength, config.hiddenSize],
    });
    const textMask = b.input("attention_mask", { dtype: "i32", shape: [batch, textLength] });
    const video = b.input(
      "encoder_hidden_states",
      { dtype: "f32", shape: [batch, visualTokens, config.encoderWidth] },
      "visualTokens",
    );
    const videoMask = b.input("encoder_attention_mask", {
      dtype: "i32",
      shape: [batch, visualTokens],
    });
    const additiveText = additiveMask(b, textMask, TEXT_MASK_FILL);
    const additiveVideo = b.add1(
      "additiveMask",
      [videoMask],
      { fill: VISUAL_MASK_FILL },
      { role: "visualMask" },
    );
    const { fused, logits, score } = fusionEncoder(
      b,
      text,
      additiveText,
      video,
      additiveVideo,
      config,
      { diagnostics: options.diagnostics ?? false },
    );
    b.output("last_hidden_state", fused);
    b.output("itm_logits", logits);
    b.output("itm_score", score);
    return { graph: b.build(), sparsity: { vision: null, crossModal: spec.crossModal } };
  },
  syntheticInputs: (_graph, spec, seed) => {
    const { input_ids: _ids, attention_mask } = syntheticText(
      spec.batch,
      spec.textLength,
      spec.text.vocabSize,
      seed,
    );
    const normal = (name: string, shape: number[]): HostTensor => {
      const data = new Float32Array(numElements(shape));
      Rng.stream(seed, `input.${name}`).fillNormal(data);
      return f32Tensor(shape, data);
    };
    return {
      encoder_embeds: normal("encoder_embeds", [spec.batch, spec.textLength, spec.text.hiddenSize]),
      attention_mask,
      encoder_hidden_states: normal("encoder_hidden_states", [
        spec.batch,
        spec.visualTokens,
        spec.text.encoderWidth,
      ]),
      encoder_attention_mask: i32Tensor(
        [spec.batch, spec.visualTokens],
        new Int32Array(spec.batch * spec.visualTokens).fill(1),
      ),
    };
  },
};
