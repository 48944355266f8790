import { ConfigError } from "../ir/errors.js";
import type { BertConfig, BertLayerConfig } from "../models/bert.js";
import type { CrossModalSparsity } from "../models/definition.js";
import type { BeitConfig, SparsityConfig } from "../models/config.js";
import { TOKEN_ORDER_KINDS, type TokenOrderKind } from "../models/token-order.js";

/**
 * Reading the reference's config dicts (BeitConfig / BertConfig keyword arguments, as
 * stored in conformance sidecars or exported with real checkpoints) into sprig configs.
 * Every missing or mistyped field is a ConfigError naming the reference key.
 */
type Dict = Readonly<Record<string, unknown>>;

function num(dict: Dict, key: string): number {
  const value = dict[key];
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new ConfigError(key, `must be a number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalNum(dict: Dict, key: string, fallback: number): number {
  return dict[key] === undefined ? fallback : num(dict, key);
}

function bool(dict: Dict, key: string, fallback: boolean): boolean {
  const value = dict[key];
  if (value === undefined) return fallback;
  if (typeof value !== "boolean")
    throw new ConfigError(key, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function activation(dict: Dict): void {
  const act = dict.hidden_act ?? "gelu";
  if (act !== "gelu")
    throw new ConfigError(
      "hidden_act",
      `only "gelu" (exact erf form) is supported, got ${JSON.stringify(act)}`,
    );
}

export function beitConfigFromReference(dict: Dict): BeitConfig {
  activation(dict);
  return {
    hiddenSize: num(dict, "hidden_size"),
    numHeads: num(dict, "num_attention_heads"),
    numLayers: optionalNum(dict, "num_hidden_layers", 12),
    intermediateSize: num(dict, "intermediate_size"),
    layerNormEps: optionalNum(dict, "layer_norm_eps", 1e-12),
    layerScale: optionalNum(dict, "layer_scale_init_value", 0.1) > 0,
    relPosBias: bool(dict, "use_relative_position_bias", true),
    numClsTokens: optionalNum(dict, "num_cls_tokens", 1),
    imageSize: optionalNum(dict, "image_size", 224),
    patchSize: optionalNum(dict, "patch_size", 16),
    channels: optionalNum(dict, "num_channels", 3),
  };
}

export function bertConfigFromReference(dict: Dict): BertLayerConfig {
  activation(dict);
  return {
    hiddenSize: num(dict, "hidden_size"),
    numHeads: num(dict, "num_attention_heads"),
    intermediateSize: num(dict, "intermediate_size"),
    layerNormEps: optionalNum(dict, "layer_norm_eps", 1e-12),
    encoderWidth: num(dict, "encoder_width"),
  };
}

/** A whole BertModel config (the text_encoder of the retrieval model). */
export function bertModelConfigFromReference(dict: Dict): BertConfig {
  const position = dict.position_embedding_type ?? "absolute";
  if (position !== "absolute") {
    throw new ConfigError(
      "position_embedding_type",
      `only "absolute" is supported, got ${JSON.stringify(position)}`,
    );
  }
  return {
    ...bertConfigFromReference(dict),
    vocabSize: num(dict, "vocab_size"),
    numLayers: num(dict, "num_hidden_layers"),
    maxPositions: num(dict, "max_position_embeddings"),
    typeVocabSize: optionalNum(dict, "type_vocab_size", 2),
    fusionLayer: num(dict, "fusion_layer"),
  };
}

/**
 * Text-guided visual token pruning of a BertConfig: token_keep_rate at the absolute layers
 * token_drop_loc (the reference's BertEncoder), or null when nothing is dropped.
 */
export function crossModalFromReference(dict: Dict): CrossModalSparsity | null {
  const keepRate = optionalNum(dict, "token_keep_rate", 1);
  const layers = dropLocations(dict);
  if (keepRate >= 1 || layers.length === 0) return null;
  const strategy = dict.token_keep_strategy ?? "cls_attn";
  if (strategy !== "cls_attn") {
    throw new ConfigError(
      "token_keep_strategy",
      `only "cls_attn" is supported, got ${JSON.stringify(strategy)}`,
    );
  }
  return { keepRate, layers };
}

/**
 * Sparsity of a reference BEiT config. `keepRate` and `dropAfter` are passed by the caller
 * because a lone BeitLayer gets its keep rate as a constructor argument, not from config.
 */
export function sparsityFromReference(
  dict: Dict,
  tokens: { keepRate: number; dropAfter: readonly number[] } | null,
): SparsityConfig {
  const random = dict.sparse_random_attn;
  const order = dict.token_3d_order ?? "none";
  if (!TOKEN_ORDER_KINDS.includes(order as TokenOrderKind)) {
    throw new ConfigError(
      "token_3d_order",
      `must be one of ${TOKEN_ORDER_KINDS.join(", ")}, got ${JSON.stringify(order)}`,
    );
  }
  const strategy = dict.token_keep_strategy ?? "cls_attn";
  if (tokens !== null && tokens.keepRate < 1 && strategy !== "cls_attn") {
    throw new ConfigError(
      "token_keep_strategy",
      `only "cls_attn" is supported, got ${JSON.stringify(strategy)}`,
    );
  }
  return {
    attention:
      random === null || random === undefined
        ? null
        : {
            blockSize: num(dict, "attn_block_size"),
            local: optionalNum(dict, "sparse_local_attn", 1),
            random: num(dict, "sparse_random_attn"),
            seed: 0,
            perHead: false,
            padding: "reference",
          },
    tokens: tokens === null || tokens.keepRate >= 1 ? null : tokens,
    tokenOrder: order as TokenOrderKind,
  };
}

/** The reference's token_drop_loc list. */
export function dropLocations(dict: Dict): number[] {
  const value = dict.token_drop_loc ?? [];
  if (!Array.isArray(value) || !value.every((v) => Number.isInteger(v))) {
    throw new ConfigError(
      "token_drop_loc",
      `must be a list of layer indices, got ${JSON.stringify(value)}`,
    );
  }
  return value as number[];
}
