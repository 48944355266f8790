import { GraphBuilder } from "../ir/builder.js";
import { ConfigError } from "../ir/errors.js";
import type { Graph, TensorRef } from "../ir/graph.js";
import { relPosTableRows } from "../ir/relpos.js";
import { type HostTensor, i32Tensor } from "../ir/tensor.js";
import { type BeitConfig, checkVisionSpec, tokenWindow, type VisionModelSpec } from "./config.js";

/**
 * Builders for the BEiT vision encoder of SViTT, as dense graphs. Sparsity is not built
 * here: passes add it (sparsify-attention for edges, prune-tokens for nodes), so one
 * builder serves dense baselines, the SViTT curriculum and users' own patterns.
 *
 * Weight keys follow the reference state_dict (models/sparse_xbeit.py), so converted
 * checkpoints load by name. Shapes: B batch, N = 1 + L tokens (CLS first), C hidden.
 */

export type Window = readonly [number, number, number];

export interface AttentionResult {
  /** Context with heads joined, before the output projection: [B, N, C]. */
  readonly context: TensorRef;
  /** CLS rows of the attention probabilities: [B, H, numCls, N]. */
  readonly clsProbs: TensorRef;
}

export interface LayerResult extends AttentionResult {
  readonly output: TensorRef;
}

/** The initial token index: local token i sits at original position i. */
export function identityTokenIndex(b: GraphBuilder, localTokens: number): TensorRef {
  const values = new Int32Array(localTokens);
  for (let i = 0; i < localTokens; i++) values[i] = i;
  return b.constant("token_index", i32Tensor([1, localTokens], values), "tokenIndex");
}

/**
 * BeitSelfAttention: q = x Wqᵀ + bq, k = x Wkᵀ (no bias), v = x Wvᵀ + bv, then dense
 * multi-head attention with the layer's own 3-D relative position bias when `window` is set.
 */
export function beitSelfAttention(
  b: GraphBuilder,
  x: TensorRef,
  config: BeitConfig,
  tokenIndex: TensorRef,
  window: Window | null,
): AttentionResult {
  const c = config.hiddenSize;
  const q = b.withScope("query", () =>
    b.add1("linear", [x, b.weight("weight", [c, c]), b.weight("bias", [c])], {}),
  );
  const k = b.withScope("key", () => b.add1("linear", [x, b.weight("weight", [c, c])], {}));
  const v = b.withScope("value", () =>
    b.add1("linear", [x, b.weight("weight", [c, c]), b.weight("bias", [c])], {}),
  );
  const inputs = [q, k, v];
  if (window !== null) {
    const table = b.weight("relative_position_bias.relative_position_bias_table", [
      relPosTableRows(window),
      config.numHeads,
    ]);
    inputs.push(table, tokenIndex);
  }
  const [context, clsProbs] = b.add("attention", inputs, {
    heads: config.numHeads,
    numCls: config.numClsTokens,
    probs: "cls",
    mask: false,
    relPosBias: window === null ? null : { window },
  });
  return { context: context!, clsProbs: clsProbs! };
}

function layerNorm(b: GraphBuilder, x: TensorRef, scope: string, config: BeitConfig): TensorRef {
  const c = config.hiddenSize;
  return b.withScope(scope, () =>
    b.add1("layerNorm", [x, b.weight("weight", [c]), b.weight("bias", [c])], {
      eps: config.layerNormEps,
    }),
  );
}

function dense(
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

/**
 * BeitLayer (pre-LayerNorm, layer scale):
 *   h   = x + λ1 ⊙ Wo · Attn(LN_before(x))
 *   out = h + λ2 ⊙ W2 · GELU(W1 · LN_after(h))
 */
export function beitLayer(
  b: GraphBuilder,
  x: TensorRef,
  config: BeitConfig,
  layer: number,
  tokenIndex: TensorRef,
  window: Window | null,
): LayerResult {
  const c = config.hiddenSize;
  return b.inLayer(layer, () => {
    const normed = layerNorm(b, x, "layernorm_before", config);
    const attention = b.withScope("attention.attention", () =>
      beitSelfAttention(b, normed, config, tokenIndex, window),
    );
    let attended = dense(b, attention.context, "attention.output.dense", c, c);
    if (config.layerScale)
      attended = b.withScope("lambda_1", () => b.add1("mul", [attended, b.weight("", [c])], {}));
    const hidden = b.add1("add", [attended, x], {}, { name: b.scopedName("residual_1") });
    const ffnIn = layerNorm(b, hidden, "layernorm_after", config);
    const up = b.add1(
      "gelu",
      [dense(b, ffnIn, "intermediate.dense", c, config.intermediateSize)],
      {},
    );
    let down = dense(b, up, "output.dense", config.intermediateSize, c);
    if (config.layerScale)
      down = b.withScope("lambda_2", () => b.add1("mul", [down, b.weight("", [c])], {}));
    const output = b.add1(
      "add",
      [down, hidden],
      {},
      { name: b.scopedName("residual_2"), role: "layerOutput" },
    );
    return { ...attention, output };
  });
}

export interface EncoderOutputs {
  /** Expose every layer's input as "hidden_states.i" and CLS probabilities as "cls_attention_probs.layerI". */
  readonly diagnostics: boolean;
  /** Prefix of the diagnostic output names (e.g. "vision." in a graph with several parts). */
  readonly outputPrefix?: string;
}

/**
 * BeitEncoder: the layers in sequence, scope "layer.i". Token dropping and reordering are
 * added later by passes; here every layer sees the same L tokens. The caller tags `x`
 * with the role "encoderInput" (token reordering starts there).
 */
export function beitEncoder(
  b: GraphBuilder,
  x: TensorRef,
  config: BeitConfig,
  window: Window,
  tokenIndex: TensorRef,
  outputs: EncoderOutputs,
): TensorRef {
  const prefix = outputs.outputPrefix ?? "";
  let hidden = x;
  for (let i = 0; i < config.numLayers; i++) {
    if (outputs.diagnostics) b.output(`${prefix}hidden_states.${i}`, hidden);
    const layer = b.withScope(`layer.${i}`, () =>
      beitLayer(b, hidden, config, i, tokenIndex, config.relPosBias ? window : null),
    );
    if (outputs.diagnostics) b.output(`${prefix}cls_attention_probs.layer${i}`, layer.clsProbs);
    hidden = layer.output;
  }
  return hidden;
}

export interface VisionEncoderResult {
  /** The encoder's last hidden states [B, 1 + kept, C] (CLS first). */
  readonly lastHidden: TensorRef;
  /** The mean-pooling head's output [B, C]. */
  readonly pooled: TensorRef;
}

/**
 * BeitModel for video under the current scope: Conv2d patch embedding of every frame, CLS
 * token prepended (no absolute position embedding), the encoder, then the mean-pooling
 * head LayerNorm(mean of the non-CLS tokens). `pixels` is f32 [B, T, Cin, S, S].
 */
export function beitModel(
  b: GraphBuilder,
  pixels: TensorRef,
  spec: VisionModelSpec,
  outputs: EncoderOutputs,
): VisionEncoderResult {
  const { model, frames } = spec;
  const window = tokenWindow(model, frames);
  const c = model.hiddenSize;
  const p = model.patchSize;
  const embedded = b.withScope("embeddings", () => {
    const patches = b.withScope("patch_embeddings.projection", () =>
      b.add1(
        "patchEmbed",
        [pixels, b.weight("weight", [c, model.channels, p, p]), b.weight("bias", [c])],
        { patchSize: p },
      ),
    );
    return b.add1(
      "prependTokens",
      [b.weight("cls_token", [1, 1, c]), patches],
      {},
      { role: "encoderInput" },
    );
  });
  const localTokens = window[0] * window[1] * window[2];
  const tokenIndex = identityTokenIndex(b, localTokens);
  const lastHidden = b.withScope("encoder", () =>
    beitEncoder(b, embedded, model, window, tokenIndex, outputs),
  );
  const pooled = b.withScope("pooler", () => {
    const mean = b.add1("meanTokens", [lastHidden], { skip: model.numClsTokens });
    return b.withScope("layernorm", () =>
      b.add1("layerNorm", [mean, b.weight("weight", [c]), b.weight("bias", [c])], {
        eps: model.layerNormEps,
      }),
    );
  });
  return { lastHidden, pooled };
}

/** The pixels input of a vision spec: f32 [B, T, Cin, S, S]. */
export function pixelsInput(b: GraphBuilder, spec: VisionModelSpec): TensorRef {
  const { model, frames, batch } = spec;
  return b.input("pixel_values", {
    dtype: "f32",
    shape: [batch, frames, model.channels, model.imageSize, model.imageSize],
  });
}

/** The vision encoder graph: pixel_values -> last_hidden_state, pooler_output. */
export function buildVisionModel(
  spec: VisionModelSpec,
  options: { diagnostics?: boolean } = {},
): Graph {
  checkVisionSpec(spec);
  const b = new GraphBuilder(`beit_${spec.frames}f`);
  const pixels = pixelsInput(b, spec);
  const { lastHidden, pooled } = beitModel(b, pixels, spec, {
    diagnostics: options.diagnostics ?? false,
  });
  b.output("last_hidden_state", lastHidden);
  b.output("pooler_output", pooled);
  return b.build();
}

export interface AttentionOnlyOptions {
  readonly batch?: number;
  /** Local tokens in the sequence (default: the whole window), as after token pruning. */
  readonly keptTokens?: number;
  /**
   * Where the token index comes from: a graph constant (the identity, as entering the
   * first layer; backends may precompute the bias from it) or a run-time i32 input named
   * `token_idx` [1, keptTokens], as after a token drop (see spreadTokenIndex).
   */
  readonly tokenIndex?: "constant" | "input";
}

/**
 * One attention node of the encoder on its own: inputs q, k, v [B, N, C] (already
 * projected) for a clip of `frames` frames, the layer's relative position bias, outputs
 * context and CLS probabilities. Used to measure attention apart from the linear layers.
 */
export function buildAttentionOnly(
  config: BeitConfig,
  frames: number,
  options: AttentionOnlyOptions = {},
): Graph {
  const window = tokenWindow(config, frames);
  const windowTokens = window[0] * window[1] * window[2];
  const localTokens = options.keptTokens ?? windowTokens;
  if (!(Number.isInteger(localTokens) && localTokens >= 1 && localTokens <= windowTokens)) {
    throw new ConfigError(
      "keptTokens",
      `must be an integer in [1, ${windowTokens}], got ${localTokens}`,
    );
  }
  const tokens = localTokens + config.numClsTokens;
  const batch = options.batch ?? 1;
  const b = new GraphBuilder(`attention_${frames}f_${tokens}t`);
  const type = { dtype: "f32" as const, shape: [batch, tokens, config.hiddenSize] };
  const [q, k, v] = ["q", "k", "v"].map((name) => b.input(name, type));
  const inputs = [q!, k!, v!];
  if (config.relPosBias) {
    inputs.push(
      b.weight("relative_position_bias.relative_position_bias_table", [
        relPosTableRows(window),
        config.numHeads,
      ]),
    );
    inputs.push(
      options.tokenIndex === "input"
        ? b.input("token_idx", { dtype: "i32", shape: [1, localTokens] }, "tokenIndex")
        : localTokens === windowTokens
          ? identityTokenIndex(b, localTokens)
          : b.constant("token_index", spreadTokenIndex(windowTokens, localTokens), "tokenIndex"),
    );
  }
  const [context, clsProbs] = b.inLayer(0, () =>
    b.add("attention", inputs, {
      heads: config.numHeads,
      numCls: config.numClsTokens,
      probs: "cls",
      mask: false,
      relPosBias: config.relPosBias ? { window } : null,
    }),
  );
  b.output("context", context!);
  b.output("cls_attention_probs", clsProbs!);
  return b.build();
}

/**
 * `kept` of the `windowTokens` original positions, evenly spread and ascending: a stand-in
 * for the run-time token index a token drop produces. i32 [1, kept].
 */
export function spreadTokenIndex(windowTokens: number, kept: number): HostTensor {
  const values = new Int32Array(kept);
  for (let i = 0; i < kept; i++) values[i] = Math.floor((i * windowTokens) / kept);
  return i32Tensor([1, kept], values);
}
