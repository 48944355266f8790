import { GraphBuilder } from "../ir/builder.js";
import { ConfigError } from "../ir/errors.js";
import type { Graph, TensorRef } from "../ir/graph.js";
import { i32Tensor } from "../ir/tensor.js";

/**
 * Builders for SViTT's text encoder: BERT as the authors' models/sparse_xbert.py defines it
 * (BertModel with `fusion_layer`). Layers 0 .. fusionLayer-1 are text-only; layers
 * fusionLayer .. numLayers-1 add cross-attention from the text to the visual tokens:
 *   a   = LN(x + Wo · SelfAttn(x, textMask))
 *   c   = LN(a + Wc · CrossAttn(a, video, videoMask))      (fusion layers only)
 *   out = LN(c + W2 · GELU(W1 · c))
 * Post-LayerNorm, exact GELU, additive masks. The text mask is (1 - m) · -10000
 * (BertModel.get_extended_attention_mask), the visual mask (1 - m) · -1e9
 * (invert_attention_mask): two different constants, as in the reference.
 *
 * `mode: "text"` of the reference runs layers [0, fusionLayer) from the embeddings;
 * `mode: "fusion"` runs [fusionLayer, numLayers) from given text hidden states. Weight keys
 * follow BertModel's state_dict under the caller's scope. Text-guided pruning of the visual
 * tokens is added by the prune-visual-tokens pass.
 */

/** The architecture of one BertLayer (BertConfig fields, camelCased). */
export interface BertLayerConfig {
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly intermediateSize: number;
  readonly layerNormEps: number;
  /** Width of the visual tokens the fusion layers cross-attend to (encoder_width). */
  readonly encoderWidth: number;
}

/** The whole BERT architecture, named after the reference's BertConfig fields. */
export interface BertConfig extends BertLayerConfig {
  readonly vocabSize: number;
  readonly numLayers: number;
  /** Rows of the position table (max_position_embeddings). */
  readonly maxPositions: number;
  readonly typeVocabSize: number;
  /** The first layer with cross-attention (fusion_layer). */
  readonly fusionLayer: number;
}

/** bert-base-uncased as SViTT's released retrieval configs use it (configs/config_bert.json). */
export const BERT_BASE: BertConfig = {
  vocabSize: 30522,
  hiddenSize: 768,
  numHeads: 12,
  numLayers: 12,
  intermediateSize: 3072,
  layerNormEps: 1e-12,
  maxPositions: 512,
  typeVocabSize: 2,
  fusionLayer: 9,
  encoderWidth: 768,
};

/** Additive mask constants of the reference (see the module comment). */
export const TEXT_MASK_FILL = -10000;
export const VISUAL_MASK_FILL = -1e9;

function positiveInt(field: string, value: unknown, max = 1 << 24): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigError(field, `must be an integer in [1, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Checks one layer's architecture; throws ConfigError naming the first bad field. */
export function checkBertLayerConfig(config: BertLayerConfig, prefix = "text"): BertLayerConfig {
  const hidden = positiveInt(`${prefix}.hiddenSize`, config.hiddenSize, 1 << 16);
  const heads = positiveInt(`${prefix}.numHeads`, config.numHeads, 1024);
  if (hidden % heads !== 0) {
    throw new ConfigError(
      `${prefix}.hiddenSize`,
      `${hidden} is not divisible by ${prefix}.numHeads = ${heads}`,
    );
  }
  positiveInt(`${prefix}.intermediateSize`, config.intermediateSize, 1 << 18);
  positiveInt(`${prefix}.encoderWidth`, config.encoderWidth, 1 << 16);
  if (
    !(typeof config.layerNormEps === "number" && config.layerNormEps > 0 && config.layerNormEps < 1)
  ) {
    throw new ConfigError(
      `${prefix}.layerNormEps`,
      `must be in (0, 1), got ${JSON.stringify(config.layerNormEps)}`,
    );
  }
  return config;
}

/** Checks a BERT architecture; throws ConfigError naming the first bad field. */
export function checkBertConfig(config: BertConfig, prefix = "text"): BertConfig {
  checkBertLayerConfig(config, prefix);
  positiveInt(`${prefix}.vocabSize`, config.vocabSize);
  const layers = positiveInt(`${prefix}.numLayers`, config.numLayers, 1000);
  positiveInt(`${prefix}.maxPositions`, config.maxPositions, 1 << 16);
  positiveInt(`${prefix}.typeVocabSize`, config.typeVocabSize, 1 << 16);
  const fusion = config.fusionLayer;
  if (!(Number.isInteger(fusion) && fusion >= 0 && fusion <= layers)) {
    throw new ConfigError(
      `${prefix}.fusionLayer`,
      `must be an integer in [0, ${layers}] (the first layer with cross-attention), got ${JSON.stringify(fusion)}`,
    );
  }
  return config;
}

/** Checks a text length against the position table. */
export function checkTextLength(config: BertConfig, textLength: number, field: string): number {
  return positiveInt(field, textLength, config.maxPositions);
}

// ---- pieces ------------------------------------------------------------------------------------

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

function layerNorm(b: GraphBuilder, x: TensorRef, config: BertLayerConfig): TensorRef {
  const c = config.hiddenSize;
  return b.withScope("LayerNorm", () =>
    b.add1("layerNorm", [x, b.weight("weight", [c]), b.weight("bias", [c])], {
      eps: config.layerNormEps,
    }),
  );
}

/** LN(x + residual): BertSelfOutput / BertOutput under the current scope. */
function addAndNorm(
  b: GraphBuilder,
  x: TensorRef,
  residual: TensorRef,
  config: BertLayerConfig,
): TensorRef {
  const sum = b.add1("add", [x, residual], {}, { name: b.scopedName("residual") });
  return layerNorm(b, sum, config);
}

/** An additive attention mask [B, L] from a 1/0 token mask [B, L] (i32). */
export function additiveMask(b: GraphBuilder, mask: TensorRef, fill: number): TensorRef {
  return b.add1("additiveMask", [mask], { fill });
}

/**
 * BertEmbeddings: LN(word[ids] + token_type[0] + position[0..L-1]) under scope
 * "embeddings" (the sum in the reference's order). ids i32 [B, L] -> [B, L, C].
 */
export function bertEmbeddings(b: GraphBuilder, ids: TensorRef, config: BertConfig): TensorRef {
  const [, length] = b.shapeOf(ids);
  const c = config.hiddenSize;
  return b.withScope("embeddings", () => {
    const words = b.withScope("word_embeddings", () =>
      b.add1("embedding", [b.weight("weight", [config.vocabSize, c]), ids], {}),
    );
    const positionIds = new Int32Array(length!);
    for (let i = 0; i < length!; i++) positionIds[i] = i;
    const types = b.withScope("token_type_embeddings", () =>
      b.add1(
        "embedding",
        [
          b.weight("weight", [config.typeVocabSize, c]),
          b.constant("ids", i32Tensor([1, length!], new Int32Array(length!))),
        ],
        {},
      ),
    );
    const positions = b.withScope("position_embeddings", () =>
      b.add1(
        "embedding",
        [
          b.weight("weight", [config.maxPositions, c]),
          b.constant("ids", i32Tensor([1, length!], positionIds)),
        ],
        {},
      ),
    );
    const sum = b.add1("add", [b.add1("add", [words, types], {}), positions], {});
    return layerNorm(b, sum, config);
  });
}

/** BertAttention (self or cross) under the current scope; returns output and probabilities. */
function attentionBlock(
  b: GraphBuilder,
  x: TensorRef,
  keySource: TensorRef,
  keyWidth: number,
  mask: TensorRef | null,
  config: BertLayerConfig,
  cross: boolean,
): { output: TensorRef; probs: TensorRef } {
  const c = config.hiddenSize;
  const q = linear(b, x, "self.query", c, c);
  const k = linear(b, keySource, "self.key", keyWidth, c);
  const v = linear(b, keySource, "self.value", keyWidth, c);
  const [context, probs] = b.add(
    "attention",
    mask === null ? [q, k, v] : [q, k, v, mask],
    { heads: config.numHeads, numCls: 0, probs: "all", mask: mask !== null, relPosBias: null },
    { name: b.scopedName("self"), role: cross ? "crossAttention" : null },
  );
  const projected = linear(b, context!, "output.dense", c, c);
  const output = b.withScope("output", () => addAndNorm(b, projected, x, config));
  return { output, probs: probs! };
}

/** The visual tokens a fusion layer reads: [B, Lv, encoderWidth] and an additive mask or null. */
export interface VisualInput {
  readonly tokens: TensorRef;
  readonly mask: TensorRef | null;
}

export interface BertLayerResult {
  readonly output: TensorRef;
  readonly selfProbs: TensorRef;
  /** Cross-attention probabilities [B, H, Lt, Lv]; null for text-only layers. */
  readonly crossProbs: TensorRef | null;
}

/**
 * One BertLayer under the current scope: self-attention, cross-attention when `visual` is
 * given (fusion layers), feed-forward; its nodes belong to layer `layer`.
 */
export function bertLayer(
  b: GraphBuilder,
  x: TensorRef,
  textMask: TensorRef,
  visual: VisualInput | null,
  config: BertLayerConfig,
  layer: number,
): BertLayerResult {
  const c = config.hiddenSize;
  return b.inLayer(layer, () => {
    const self = b.withScope("attention", () =>
      attentionBlock(b, x, x, c, textMask, config, false),
    );
    let hidden = self.output;
    let crossProbs: TensorRef | null = null;
    if (visual !== null) {
      const cross = b.withScope("crossattention", () =>
        attentionBlock(
          b,
          self.output,
          visual.tokens,
          config.encoderWidth,
          visual.mask,
          config,
          true,
        ),
      );
      hidden = cross.output;
      crossProbs = cross.probs;
    }
    const up = b.add1(
      "gelu",
      [linear(b, hidden, "intermediate.dense", c, config.intermediateSize)],
      {},
    );
    const down = linear(b, up, "output.dense", config.intermediateSize, c);
    const output = b.withScope("output", () => addAndNorm(b, down, hidden, config));
    return { output, selfProbs: self.probs, crossProbs };
  });
}

export interface StackOutputs {
  /** Expose every layer's input as "hidden_states.<layer>" and cross probabilities. */
  readonly diagnostics: boolean;
  /** Prefix of the diagnostic output names (e.g. "text." in a graph with several parts). */
  readonly outputPrefix?: string;
}

/**
 * The text layers [0, fusionLayer) (BertModel mode "text") from embeddings [B, L, C] with
 * the additive text mask [B, L]; scope "encoder".
 */
export function textLayers(
  b: GraphBuilder,
  embeddings: TensorRef,
  textMask: TensorRef,
  config: BertConfig,
  outputs: StackOutputs,
): TensorRef {
  const prefix = outputs.outputPrefix ?? "";
  let hidden = embeddings;
  b.withScope("encoder", () => {
    for (let i = 0; i < config.fusionLayer; i++) {
      if (outputs.diagnostics) b.output(`${prefix}hidden_states.${i}`, hidden);
      hidden = b.withScope(`layer.${i}`, () =>
        bertLayer(b, hidden, textMask, null, config, i),
      ).output;
    }
  });
  return hidden;
}

/**
 * The fusion layers [fusionLayer, numLayers) (BertModel mode "fusion"); scope "encoder".
 * The visual tokens are tagged (roles visualTokens / visualMask) so that the
 * prune-visual-tokens pass can thin them for later layers. The mask may be null (all
 * visual tokens valid, as evaluation() passes them; an all-zero additive mask adds nothing).
 */
export function fusionLayers(
  b: GraphBuilder,
  text: TensorRef,
  textMask: TensorRef,
  visual: VisualInput,
  config: BertConfig,
  outputs: StackOutputs,
): TensorRef {
  const prefix = outputs.outputPrefix ?? "";
  let hidden = text;
  b.withScope("encoder", () => {
    for (let i = config.fusionLayer; i < config.numLayers; i++) {
      if (outputs.diagnostics && i > config.fusionLayer)
        b.output(`${prefix}hidden_states.${i}`, hidden);
      const result = b.withScope(`layer.${i}`, () =>
        bertLayer(b, hidden, textMask, visual, config, i),
      );
      if (outputs.diagnostics)
        b.output(`${prefix}cross_attention_probs.layer${i}`, result.crossProbs!);
      hidden = result.output;
    }
  });
  return hidden;
}

/** Row 0 of every sequence: [B, L, C] -> [B, C] (the [CLS] embedding). */
export function firstToken(b: GraphBuilder, x: TensorRef): TensorRef {
  const [batch, , width] = b.shapeOf(x);
  const row = b.add1("slice", [x], { axis: 1, start: 0, end: 1 });
  return b.add1("reshape", [row], { shape: [batch!, width!] });
}

/**
 * The ITM head of SingularityRetrievalBase: logits = itm_head(fusion [CLS]) [B, 2] and the
 * score evaluation() ranks by, the raw class-1 logit [B] (no softmax).
 */
export function itmHead(
  b: GraphBuilder,
  fused: TensorRef,
  config: BertLayerConfig,
): { logits: TensorRef; score: TensorRef } {
  const cls = firstToken(b, fused);
  const logits = linear(b, cls, "itm_head", config.hiddenSize, 2);
  const batch = b.shapeOf(logits)[0]!;
  const column = b.add1("slice", [logits], { axis: 1, start: 1, end: 2 });
  const score = b.add1("reshape", [column], { shape: [batch] });
  return { logits, score };
}

// ---- a single layer on its own (the conformance case e1) -------------------------------------

export interface BertLayerShapes {
  readonly batch: number;
  readonly textTokens: number;
  /** Video tokens cross-attended to, CLS included. */
  readonly visualTokens: number;
}

/**
 * A single fusion BertLayer graph with additive masks as inputs, as the reference's
 * BertLayer receives them: hidden_states [B, Lt, C], attention_mask [B,1,1,Lt],
 * encoder_hidden_states [B, Lv, Wv], encoder_attention_mask [B,1,1,Lv]; outputs
 * layer_output, self_attention_probs and cross_attention_probs.
 */
export function buildBertLayer(config: BertLayerConfig, shapes: BertLayerShapes, layer = 0): Graph {
  checkBertLayerConfig(config, "model");
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
  const flat = (mask: TensorRef, length: number) =>
    b.inLayer(layer, () => b.add1("reshape", [mask], { shape: [batch, length] }));
  const result = bertLayer(
    b,
    text,
    flat(textMask, textTokens),
    { tokens: video, mask: flat(videoMask, visualTokens) },
    config,
    layer,
  );
  b.output("layer_output", result.output);
  b.output("self_attention_probs", result.selfProbs);
  b.output("cross_attention_probs", result.crossProbs!);
  return b.build();
}
