import { buildVisionModel } from "../beit.js";
import { BEIT_BASE, checkVisionSpec, tokenWindow, type VisionModelSpec } from "../config.js";
import type { ModelDefinition, ModelSparsity } from "../definition.js";
import { syntheticClip } from "../init.js";
import { DENSE_SPARSITY, visionPreset } from "../presets.js";
import { VISION_FLAGS, visionSpecSchema } from "./schema.js";

/** The sparsity sites of a vision encoder spec (see ModelSparsity). */
export function visionSparsity(spec: VisionModelSpec): ModelSparsity["vision"] {
  return {
    sparsity: spec.sparsity,
    window: tokenWindow(spec.model, spec.frames),
    globalTokens: spec.model.numClsTokens,
    ...(spec.precision === undefined ? {} : { precision: spec.precision }),
  };
}

/** "SViTT BEiT-base vision encoder, 8 frames" (a non-base architecture says its size). */
export function describeVision(spec: VisionModelSpec): string {
  const dense = spec.sparsity.attention === null && spec.sparsity.tokens === null;
  const base =
    spec.model.hiddenSize === BEIT_BASE.hiddenSize &&
    spec.model.numLayers === BEIT_BASE.numLayers &&
    spec.model.imageSize === BEIT_BASE.imageSize
      ? "BEiT-base"
      : `BEiT (hidden ${spec.model.hiddenSize}, ${spec.model.numLayers} layers, ${spec.model.imageSize} px)`;
  const batch = spec.batch === 1 ? "" : `, batch ${spec.batch}`;
  const precision =
    spec.precision === undefined || spec.precision === "fp32" ? "" : `, ${spec.precision}`;
  return `${dense ? "dense" : "SViTT"} ${base} vision encoder, ${spec.frames} frames${batch}${precision}`;
}

/**
 * The SViTT vision encoder (BEiT with block-sparse attention and CLS-attention token
 * dropping): pixel_values [B, T, 3, S, S] -> last_hidden_state, pooler_output. Weight
 * keys are BeitModel's (models/sparse_xbeit.py); in the retrieval checkpoint they sit
 * under "vision_encoder.".
 */
export const visionModel: ModelDefinition<VisionModelSpec> = {
  name: "vision",
  summary: "SViTT vision encoder (BEiT): pixels -> video tokens and pooled embedding",
  checkpointPrefix: "vision_encoder.",
  schema: visionSpecSchema,
  flags: VISION_FLAGS,
  framesPath: "frames",
  layersPath: "model.numLayers",
  preset: ({ frames, variant, layers }) => visionPreset(frames, variant, 1, layers),
  check: checkVisionSpec,
  dense: (spec) => ({ ...spec, sparsity: DENSE_SPARSITY }),
  describe: describeVision,
  build: (spec, options = {}) => ({
    graph: buildVisionModel(spec, { diagnostics: options.diagnostics ?? false }),
    sparsity: { vision: visionSparsity(spec), crossModal: null },
  }),
  syntheticInputs: (graph, _spec, seed) => syntheticClip(graph, seed),
};
