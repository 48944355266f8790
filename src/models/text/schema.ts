import { z } from "zod";
import type { FlagSpec } from "../../config/flags.js";
import { int, number } from "../../config/schema.js";
import type { BertConfig } from "../bert.js";
import type { TextModelSpec } from "./index.js";

/** The text encoder's config schema (types and ranges; checkBertConfig adds the relations). */
export const bertConfigSchema: z.ZodType<BertConfig> = z.strictObject({
  vocabSize: int(1, 1 << 24),
  hiddenSize: int(1, 1 << 16),
  numHeads: int(1, 1024),
  numLayers: int(1, 1000),
  intermediateSize: int(1, 1 << 18),
  layerNormEps: number(0, 1, { min: true, max: true }),
  maxPositions: int(1, 1 << 16),
  typeVocabSize: int(1, 1 << 16),
  fusionLayer: int(0, 1000),
  encoderWidth: int(1, 1 << 16),
});

export const MAX_CAPTIONS = 4096;

export const textSpecSchema: z.ZodType<TextModelSpec> = z.strictObject({
  text: bertConfigSchema,
  batch: int(1, MAX_CAPTIONS),
  textLength: int(1, 1 << 16),
});

/** Flags of every model with a text encoder (paths relative to the spec holding `text`). */
export const TEXT_LENGTH_FLAG: FlagSpec = {
  flag: "--text-length",
  placeholder: "<L>",
  path: "textLength",
  kind: "int",
  help: "tokens per caption after padding (max_txt_l; default 64)",
};

export const TEXT_FLAGS: readonly FlagSpec[] = [
  {
    flag: "--batch",
    placeholder: "<B>",
    path: "batch",
    kind: "int",
    help: "captions per batch (default 1)",
  },
  TEXT_LENGTH_FLAG,
];
