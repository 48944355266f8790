import { GraphBuilder } from "../ir/builder.js";
import { ConfigError } from "../ir/errors.js";
import type { Graph, TensorRef } from "../ir/graph.js";

/**
 * The multimodal BERT layer of SViTT (models/sparse_xbert.py, BertLayer with cross
 * attention): post-LayerNorm, additive masks.
 *   a   = LN(x + Wo · SelfAttn(x, mask))
 *   c   = LN(a + Wc · CrossAttn(a, video, videoMask))
 *   out = LN(c + W2 · GELU(W1 · c))
 * Text-guided pruning of the video tokens is added by the prune-visual-tokens pass.
 */
export interface BertLayerConfig {
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly intermediateSize: number;
  readonly layerNormEps: number;
  /** Width of the video tokens (encoder_width). */
  readonly encoderWidth: number;
}

export interface BertLayerShapes {
  readonly batch: number;
  readonly textTokens: number;
  /** Video tokens cross-attended to, CLS included. */
  readonly visualTokens: number;
}

export function checkBertConfig(config: BertLayerConfig): BertLayerConfig {
  for (const field of ["hiddenSize", "numHeads", "intermediateSize", "encoderWidth"] as const) {
    const value = config[field];
    if (!(Number.isInteger(value) && value >= 1)) {
      throw new ConfigError(`model.${field}`, `must be an integer >= 1, got ${value}`);
    }
  }
  if (config.hiddenSize % config.numHeads !== 0) {
    throw new ConfigError(
      "model.hiddenSize",
      `${config.hiddenSize} is not divisible by model.numHeads = ${config.numHeads}`,
    );
  }
  if (!(config.layerNormEps > 0 && config.layerNormEps < 1)) {
    throw new ConfigError("model.layerNormEps", `must be in (0, 1), got ${config.layerNormEps}`);
  }
  return config;
}

function linear(
  b: GraphBuilder,
  x: TensorRef,
  scope: string,
  inFeatures: number,
  outFeatures: number,
): TensorRef {
  return b.withScope(scope, () =>
    b.add1(
      "linear",
      [x, b.weight("weight", [outFeatures, inFeatures]), b.weight("bias", [outFeatures])],
      {},
    ),
  );
}

/** LN(x + residual) with weights "<scope>.LayerNorm.*" (BertSelfOutput / BertOutput). */
function addAndNorm(
  b: GraphBuilder,
  x: TensorRef,
  residual: TensorRef,
  config: BertLayerConfig,
): TensorRef {
  const c = config.hiddenSize;
  const sum = b.add1("add", [x, residual], {}, { name: b.scopedName("residual") });
  return b.withScope("LayerNorm", () =>
    b.add1("layerNorm", [sum, b.weight("weight", [c]), b.weight("bias", [c])], {
      eps: config.layerNormEps,
    }),
  );
}

/** BertSelfAttention + BertSelfOutput; returns the block output and attention probabilities. */
function attentionBlock(
  b: GraphBuilder,
  x: TensorRef,
  keySource: TensorRef,
  keyWidth: number,
  mask: TensorRef,
  config: BertLayerConfig,
  cross: boolean,
): { output: TensorRef; probs: TensorRef } {
  const c = config.hiddenSize;
  const q = linear(b, x, "self.query", c, c);
  const k = linear(b, keySource, "self.key", keyWidth, c);
  const v = linear(b, keySource, "self.value", keyWidth, c);
  const [context, probs] = b.add(
    "attention",
    [q, k, v, mask],
    { heads: config.numHeads, numCls: 0, probs: "all", mask: true, relPosBias: null },
    { name: b.scopedName("self"), role: cross ? "crossAttention" : null },
  );
  const projected = linear(b, context!, "output.dense", c, c);
  const output = b.withScope("output", () => addAndNorm(b, projected, x, config));
  return { output, probs: probs! };
}

/**
 * A single BertLayer graph with inputs hidden_states [B, Lt, C], attention_mask [B,1,1,Lt],
 * encoder_hidden_states [B, Lv, Wv] and encoder_attention_mask [B,1,1,Lv]; outputs
 * layer_output, self_attention_probs and cross_attention_probs.
 */
export function buildBertLayer(config: BertLayerConfig, shapes: BertLayerShapes, layer = 0): Graph {
  checkBertConfig(config);
  const { batch, textTokens, visualTokens } = shapes;
  const c = config.hiddenSize;
  const b = new GraphBuilder("bert_layer");
  const text = b.input("hidden_states", { dtype: "f32", shape: [batch, textTokens, c] });
  const textMask = b.input("attention_mask", { dtype: "f32", shape: [batch, 1, 1, textTokens] });
  const video = b.input(
    "encoder_hidden_states",
    { dtype: "f32", shape: [batch, visualTokens, config.encoderWidth] },
    "visualTokens",
  );
  const videoMask = b.input(
    "encoder_attention_mask",
    { dtype: "f32", shape: [batch, 1, 1, visualTokens] },
    "visualMask",
  );
  b.inLayer(layer, () => {
    const flatTextMask = b.add1("reshape", [textMask], { shape: [batch, textTokens] });
    const flatVideoMask = b.add1("reshape", [videoMask], { shape: [batch, visualTokens] });
    const self = b.withScope("attention", () =>
      attentionBlock(b, text, text, c, flatTextMask, config, false),
    );
    const cross = b.withScope("crossattention", () =>
      attentionBlock(b, self.output, video, config.encoderWidth, flatVideoMask, config, true),
    );
    const up = b.add1(
      "gelu",
      [linear(b, cross.output, "intermediate.dense", c, config.intermediateSize)],
      {},
    );
    const down = linear(b, up, "output.dense", config.intermediateSize, c);
    const output = b.withScope("output", () => addAndNorm(b, down, cross.output, config));
    b.output("layer_output", output);
    b.output("self_attention_probs", self.probs);
    b.output("cross_attention_probs", cross.probs);
  });
  return b.build();
}
