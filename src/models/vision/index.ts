import { buildVisionModel } from "../beit.js";
import { checkVisionSpec, tokenWindow, type VisionModelSpec } from "../config.js";
import type { ModelDefinition, ModelSparsity } from "../definition.js";
import { syntheticClip } from "../init.js";
import { visionPreset } from "../presets.js";
import { VISION_FLAGS, visionSpecSchema } from "./schema.js";

/** The sparsity sites of a vision encoder spec (see ModelSparsity). */
export function visionSparsity(spec: VisionModelSpec): ModelSparsity["vision"] {
  return {
    sparsity: spec.sparsity,
    window: tokenWindow(spec.model, spec.frames),
    globalTokens: spec.model.numClsTokens,
  };
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
  preset: ({ frames, variant }) => visionPreset(frames, variant),
  check: checkVisionSpec,
  describe: (spec) =>
    `${spec.sparsity.attention === null && spec.sparsity.tokens === null ? "dense" : "SViTT"} BEiT vision encoder (hidden ${spec.model.hiddenSize}, ${spec.model.numLayers} layers), ${spec.frames} frames, batch ${spec.batch}`,
  build: (spec, options = {}) => ({
    graph: buildVisionModel(spec, { diagnostics: options.diagnostics ?? false }),
    sparsity: { vision: visionSparsity(spec), crossModal: null },
  }),
  syntheticInputs: (graph, _spec, seed) => syntheticClip(graph, seed),
};
