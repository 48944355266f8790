import { z } from "zod";
import type { FlagSpec } from "../../config/flags.js";
import { bool, int, intList, keepRate, number, oneOf } from "../../config/schema.js";
import { PADDING_MODES } from "../../ir/pattern.js";
import type { BeitConfig, SparsityConfig, VisionModelSpec } from "../config.js";
import { PRECISIONS } from "../precision.js";
import { TOKEN_ORDER_KINDS } from "../token-order.js";

/**
 * The vision encoder's config schema: types and ranges of every field (cross-field rules,
 * such as the hidden size dividing into heads, are checked by checkVisionSpec after it).
 * Config files, flags and API callers all pass through it.
 */
export const MAX_FRAMES = 4096;
export const MAX_BATCH = 4096;

export const beitConfigSchema: z.ZodType<BeitConfig> = z.strictObject({
  hiddenSize: int(1, 1 << 16),
  numHeads: int(1, 1024),
  numLayers: int(1, 1000),
  intermediateSize: int(1, 1 << 18),
  layerNormEps: number(0, 1, { min: true, max: true }),
  layerScale: bool(),
  relPosBias: bool(),
  numClsTokens: int(1, 64),
  imageSize: int(1, 1 << 16),
  patchSize: int(1, 1 << 16),
  channels: int(1, 64),
});

export const sparsitySchema: z.ZodType<SparsityConfig> = z.strictObject({
  attention: z
    .strictObject({
      blockSize: int(1, 1 << 20),
      local: int(0, 1 << 10),
      random: int(0, 1 << 20),
      seed: int(0, 2 ** 32 - 1),
      perHead: bool(),
      padding: oneOf(PADDING_MODES),
      pattern: z
        .string({ message: 'must be a pattern spec such as "window3d:3x7x7"' })
        .min(1, { message: 'must be a pattern spec such as "window3d:3x7x7"' })
        .max(1000, { message: "must be at most 1000 characters" })
        .optional(),
    })
    .nullable(),
  tokens: z
    .strictObject({
      keepRate: keepRate(),
      dropAfter: intList(0, 999),
    })
    .nullable(),
  tokenOrder: oneOf(TOKEN_ORDER_KINDS),
});

export const visionSpecSchema: z.ZodType<VisionModelSpec> = z.strictObject({
  model: beitConfigSchema,
  frames: int(1, MAX_FRAMES),
  batch: int(1, MAX_BATCH),
  sparsity: sparsitySchema,
  precision: oneOf(PRECISIONS).optional(),
});

/** The vision encoder's command-line flags (paths relative to a VisionModelSpec). */
export const VISION_FLAGS: readonly FlagSpec[] = [
  {
    flag: "--frames",
    placeholder: "<T>",
    path: "frames",
    kind: "int",
    help: "frames per clip (196 T + 1 tokens; default 8)",
  },
  {
    flag: "--batch",
    placeholder: "<B>",
    path: "batch",
    kind: "int",
    help: "clips per batch (default 1)",
  },
  {
    flag: "--keep-rate",
    placeholder: "<r>",
    path: "sparsity.tokens.keepRate",
    kind: "number",
    help: "token keep rate in (0, 1] (default: curriculum 0.7 / 0.6 / 0.5 by frames)",
  },
  {
    flag: "--drop-after",
    placeholder: "<layers>",
    path: "sparsity.tokens.dropAfter",
    kind: "intList",
    help: "comma-separated layers after which tokens are dropped (default 3,6,9)",
  },
  {
    flag: "--block-size",
    placeholder: "<n>",
    path: "sparsity.attention.blockSize",
    kind: "int",
    help: "attention block size (default 56)",
  },
  {
    flag: "--local",
    placeholder: "<n>",
    path: "sparsity.attention.local",
    kind: "int",
    help: "local window in blocks, odd (default 1)",
  },
  {
    flag: "--random",
    placeholder: "<n>",
    path: "sparsity.attention.random",
    kind: "int",
    help: "random key blocks per query block (default 3)",
  },
  {
    flag: "--seed",
    placeholder: "<n>",
    path: "sparsity.attention.seed",
    kind: "int",
    help: "seed for random blocks (default 0)",
  },
  {
    flag: "--per-head",
    path: "sparsity.attention.perHead",
    kind: "switch",
    help: "draw random blocks per head",
  },
  {
    flag: "--padding",
    placeholder: "<mode>",
    path: "sparsity.attention.padding",
    kind: "choice",
    values: PADDING_MODES,
    help: 'padded keys: "reference" (as the authors) or "masked"',
  },
  {
    flag: "--pattern",
    placeholder: "<spec>",
    path: "sparsity.attention.pattern",
    kind: "text",
    help: "a library attention pattern instead of local + random, e.g. window3d:3x7x7 (sprig pattern list)",
  },
  {
    flag: "--token-order",
    placeholder: "<kind>",
    path: "sparsity.tokenOrder",
    kind: "choice",
    values: TOKEN_ORDER_KINDS,
    help: "none | zcurve | hilbert",
  },
  {
    flag: "--precision",
    placeholder: "<p>",
    path: "precision",
    kind: "choice",
    values: PRECISIONS,
    help: "linear layers in fp32 (default) or int8 (onnx: integer kernels; tfjs, gpujs: emulated)",
  },
  {
    flag: "--layers",
    placeholder: "<n>",
    path: "model.numLayers",
    kind: "int",
    help: "encoder layers (default 12)",
  },
];
