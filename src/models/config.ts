import { parseConfig } from "../config/schema.js";
import { ConfigError } from "../ir/errors.js";
import type { PaddingMode } from "../ir/pattern.js";
import { MAX_TENSOR_ELEMENTS } from "../memory.js";
import { parsePattern } from "../patterns/library/index.js";
import type { Precision } from "./precision.js";
import { TOKEN_ORDER_KINDS, type TokenOrderKind } from "./token-order.js";
import { beitConfigSchema, visionSpecSchema } from "./vision/schema.js";

/**
 * Architecture of the BEiT vision encoder as SViTT uses it, named after the reference's
 * BeitConfig fields (camelCased). Defaults: BEiT-base, 224 px, patch 16.
 */
export interface BeitConfig {
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly numLayers: number;
  readonly intermediateSize: number;
  readonly layerNormEps: number;
  /** lambda_1 / lambda_2 layer-scale vectors (layer_scale_init_value > 0 in the reference). */
  readonly layerScale: boolean;
  /** Per-layer 3-D relative position bias (use_relative_position_bias). */
  readonly relPosBias: boolean;
  readonly numClsTokens: number;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly channels: number;
}

export const BEIT_BASE: BeitConfig = {
  hiddenSize: 768,
  numHeads: 12,
  numLayers: 12,
  intermediateSize: 3072,
  layerNormEps: 1e-12,
  layerScale: true,
  relPosBias: true,
  numClsTokens: 1,
  imageSize: 224,
  patchSize: 16,
  channels: 3,
};

/** Edge sparsity: the block-sparse attention pattern of every encoder layer. */
export interface AttentionSparsity {
  readonly blockSize: number;
  /** Local window in blocks (0 or odd; SViTT uses 1). */
  readonly local: number;
  /** Random key blocks per query block. */
  readonly random: number;
  /** Seed for the random blocks; each layer (and head, if perHead) draws its own. */
  readonly seed: number;
  /** Independent random blocks per head (the reference shares one draw across heads). */
  readonly perHead: boolean;
  readonly padding: PaddingMode;
  /**
   * A pattern spec of the pattern language (src/patterns/library/index.ts), e.g.
   * "window3d:3x7x7" or "divided + causal", in place of SViTT's local + random blocks
   * (`local` and `random` are then the defaults of the spec's svitt pattern, if it names
   * one; blockSize, seed, perHead and padding apply to every pattern). Absent: SViTT's
   * pattern from `local` and `random`.
   */
  readonly pattern?: string | undefined;
}

/** Node sparsity: keep the ceil(keepRate * L) tokens with most CLS attention after some layers. */
export interface TokenSparsity {
  readonly keepRate: number;
  /** 0-based layer indices after which tokens are dropped (the reference's token_drop_loc). */
  readonly dropAfter: readonly number[];
}

export interface SparsityConfig {
  readonly attention: AttentionSparsity | null;
  readonly tokens: TokenSparsity | null;
  readonly tokenOrder: TokenOrderKind;
}

export type { Precision } from "./precision.js";

/** Everything needed to compile one SViTT vision encoder variant. */
export interface VisionModelSpec {
  readonly model: BeitConfig;
  readonly frames: number;
  readonly batch: number;
  readonly sparsity: SparsityConfig;
  /** Absent: fp32. */
  readonly precision?: Precision | undefined;
}

// ---- validation -------------------------------------------------------------------------------

function positiveInt(field: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigError(field, `must be an integer in [1, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

function nonNegativeInt(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new ConfigError(field, `must be an integer >= 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function checkKeepRate(field: string, value: unknown): number {
  if (typeof value !== "number" || !(value > 0 && value <= 1)) {
    throw new ConfigError(field, `keep rate must be in (0, 1], got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Number of tokens a drop keeps out of `tokens`: ceil(keepRate * tokens), the product in
 * float64 as the reference's math.ceil(keep_rate * L).
 */
export function keptTokenCount(keepRate: number, tokens: number): number {
  return Math.ceil(keepRate * tokens);
}

/** Checks a BEiT architecture; throws ConfigError naming the first bad field. */
export function checkBeitConfig(config: BeitConfig, prefix = "model"): BeitConfig {
  parseConfig(beitConfigSchema, config, prefix);
  const hidden = positiveInt(`${prefix}.hiddenSize`, config.hiddenSize);
  const heads = positiveInt(`${prefix}.numHeads`, config.numHeads);
  if (hidden % heads !== 0) {
    throw new ConfigError(
      `${prefix}.hiddenSize`,
      `${hidden} is not divisible by ${prefix}.numHeads = ${heads}`,
    );
  }
  positiveInt(`${prefix}.numLayers`, config.numLayers, 1000);
  positiveInt(`${prefix}.intermediateSize`, config.intermediateSize);
  if (
    !(typeof config.layerNormEps === "number" && config.layerNormEps > 0 && config.layerNormEps < 1)
  ) {
    throw new ConfigError(
      `${prefix}.layerNormEps`,
      `must be in (0, 1), got ${config.layerNormEps}`,
    );
  }
  positiveInt(`${prefix}.numClsTokens`, config.numClsTokens, 64);
  if (config.relPosBias && config.numClsTokens !== 1) {
    throw new ConfigError(
      `${prefix}.numClsTokens`,
      "relative position bias supports exactly 1 CLS token (the reference builds its bias for one CLS token whatever num_cls_tokens says)",
    );
  }
  const image = positiveInt(`${prefix}.imageSize`, config.imageSize, 1 << 16);
  const patch = positiveInt(`${prefix}.patchSize`, config.patchSize, image);
  if (image % patch !== 0) {
    throw new ConfigError(`${prefix}.patchSize`, `${patch} does not divide imageSize ${image}`);
  }
  positiveInt(`${prefix}.channels`, config.channels, 64);
  return config;
}

/**
 * The clip's first tensors, pixel_values [B, T, C, S, S] and the patch embeddings
 * [B, T (S/p)^2 + CLS, hidden], within the elements sprig can index (src/memory.ts): checked
 * on the spec because building the graph already allocates per-token constants, so a
 * 65536-px image in 1-px patches must be refused before it is built.
 */
function checkClipSize(spec: VisionModelSpec): void {
  const { batch, frames } = spec;
  const { channels, imageSize, patchSize, hiddenSize, numClsTokens } = spec.model;
  const pixels = batch * frames * channels * imageSize * imageSize;
  const tokens = frames * (imageSize / patchSize) ** 2 + numClsTokens;
  const limit = `more than the ${MAX_TENSOR_ELEMENTS} (2^31 - 1) elements sprig can index with int32`;
  if (pixels > MAX_TENSOR_ELEMENTS) {
    throw new ConfigError(
      "model.imageSize",
      `pixel_values [${batch}, ${frames}, ${channels}, ${imageSize}, ${imageSize}] would hold ${pixels} values, ${limit}`,
    );
  }
  if (batch * tokens * hiddenSize > MAX_TENSOR_ELEMENTS) {
    throw new ConfigError(
      "model.patchSize",
      `${tokens} tokens per clip (${frames} frames of (${imageSize}/${patchSize})^2 patches) x hidden ${hiddenSize} x batch ${batch} is ${limit}`,
    );
  }
}

/**
 * fp32 and int8 run here; fp16 and bf16 do not, measured (bench/precision.bench.ts and
 * backends/onnx/quantized.ts): onnxruntime's CPU provider has no bf16 MatMul, and its fp16
 * MatMul gains at most 1.2x over fp32 on the project's x86 CPU (no fp16 arithmetic there:
 * it widens to fp32; int8 gains 3.7x on the same product); tfjs and gpu.js compute in
 * float32.
 */
function checkPrecision(precision: Precision): void {
  if (precision === "fp16" || precision === "bf16") {
    throw new ConfigError(
      "precision",
      `${precision} is not real on any backend here (onnxruntime CPU: no bf16 MatMul, fp16 MatMul at most 1.2x fp32 without fp16 arithmetic; tfjs and gpujs: float32 only); it would pay on onnxruntime's CUDA or DirectML providers or WebGPU shader-f16; use fp32, or int8 (native on onnx)`,
    );
  }
}

/** Checks a whole vision spec, including sparsity settings against the layer count. */
export function checkVisionSpec(spec: VisionModelSpec): VisionModelSpec {
  parseConfig(visionSpecSchema, spec);
  const model = checkBeitConfig(spec.model);
  positiveInt("frames", spec.frames, 4096);
  positiveInt("batch", spec.batch, 4096);
  checkPrecision(spec.precision ?? "fp32");
  checkClipSize(spec);
  const { attention, tokens, tokenOrder } = spec.sparsity;
  if (attention !== null) {
    positiveInt("sparsity.attention.blockSize", attention.blockSize);
    const local = nonNegativeInt("sparsity.attention.local", attention.local);
    if (local !== 0 && local % 2 === 0) {
      throw new ConfigError(
        "sparsity.attention.local",
        `must be 0 or odd (a window centred on the block), got ${local}`,
      );
    }
    nonNegativeInt("sparsity.attention.random", attention.random);
    nonNegativeInt("sparsity.attention.seed", attention.seed);
    if (attention.padding !== "reference" && attention.padding !== "masked") {
      throw new ConfigError(
        "sparsity.attention.padding",
        `must be "reference" or "masked", got ${JSON.stringify(attention.padding)}`,
      );
    }
    if (attention.pattern !== undefined)
      parsePattern(attention.pattern, "sparsity.attention.pattern");
  }
  if (tokens !== null) {
    checkKeepRate("sparsity.tokens.keepRate", tokens.keepRate);
    const seen = new Set<number>();
    for (const layer of tokens.dropAfter) {
      if (!Number.isInteger(layer) || layer < 0 || layer >= model.numLayers) {
        throw new ConfigError(
          "sparsity.tokens.dropAfter",
          `layer ${layer} outside [0, ${model.numLayers - 1}]`,
        );
      }
      if (seen.has(layer))
        throw new ConfigError("sparsity.tokens.dropAfter", `layer ${layer} listed twice`);
      seen.add(layer);
    }
  }
  if (!TOKEN_ORDER_KINDS.includes(tokenOrder)) {
    throw new ConfigError(
      "sparsity.tokenOrder",
      `must be one of ${TOKEN_ORDER_KINDS.join(", ")}, got ${JSON.stringify(tokenOrder)}`,
    );
  }
  return spec;
}

/** The (T, H, W) token window of a clip. */
export function tokenWindow(model: BeitConfig, frames: number): [number, number, number] {
  const side = model.imageSize / model.patchSize;
  return [frames, side, side];
}
