import { parseConfig } from "../../config/schema.js";
import { GraphBuilder } from "../../ir/builder.js";
import { ConfigError } from "../../ir/errors.js";
import type { TensorRef } from "../../ir/graph.js";
import { type HostTensor, i32Tensor } from "../../ir/tensor.js";
import { Rng } from "../../patterns/random.js";
import {
  additiveMask,
  BERT_BASE,
  type BertConfig,
  bertEmbeddings,
  checkBertConfig,
  checkTextLength,
  TEXT_MASK_FILL,
  textLayers,
} from "../bert.js";
import { type ModelDefinition, NO_SPARSITY } from "../definition.js";
import { TEXT_FLAGS, textSpecSchema } from "./schema.js";

/** Max text length of the released retrieval configs (max_txt_l). */
export const MAX_TEXT_LENGTH = 64;

/** Everything needed to compile the text encoder. */
export interface TextModelSpec {
  readonly text: BertConfig;
  /** Captions per batch. */
  readonly batch: number;
  /** Tokens per caption after padding (the tokenizer's max_length). */
  readonly textLength: number;
}

export function checkBatch(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 4096) {
    throw new ConfigError(field, `must be an integer in [1, 4096], got ${JSON.stringify(value)}`);
  }
  return value;
}

export function checkTextSpec(spec: TextModelSpec): TextModelSpec {
  parseConfig(textSpecSchema, spec);
  checkBertConfig(spec.text);
  checkBatch("batch", spec.batch);
  checkTextLength(spec.text, spec.textLength, "textLength");
  return spec;
}

/**
 * Seeded synthetic token ids and masks, shaped like a tokenizer's output: row b starts
 * with a [CLS]-like id, holds a random number of random ids in [1, vocabSize) and is
 * padded with id 0 (mask 0) to `length`.
 */
export function syntheticText(
  batch: number,
  length: number,
  vocabSize: number,
  seed: number,
): { input_ids: HostTensor; attention_mask: HostTensor } {
  const rng = Rng.stream(seed, "input.input_ids");
  const ids = new Int32Array(batch * length);
  const mask = new Int32Array(batch * length);
  for (let row = 0; row < batch; row++) {
    const used = Math.min(length, 2 + rng.below(Math.max(1, length - 1)));
    for (let i = 0; i < used; i++) {
      ids[row * length + i] = vocabSize > 1 ? 1 + rng.below(vocabSize - 1) : 0;
      mask[row * length + i] = 1;
    }
  }
  return {
    input_ids: i32Tensor([batch, length], ids),
    attention_mask: i32Tensor([batch, length], mask),
  };
}

/**
 * The text encoder graph (BertModel mode "text"): input_ids, attention_mask i32 [B, L]
 * -> last_hidden_state [B, L, C], through the embeddings and layers [0, fusionLayer).
 * Under `scope` (e.g. "text_encoder"), weight keys are BertModel's.
 */
export function textEncoder(
  b: GraphBuilder,
  ids: TensorRef,
  mask: TensorRef,
  config: BertConfig,
  options: { diagnostics: boolean; outputPrefix?: string },
): { hidden: TensorRef; additive: TensorRef } {
  const additive = additiveMask(b, mask, TEXT_MASK_FILL);
  const embedded = bertEmbeddings(b, ids, config);
  const hidden = textLayers(b, embedded, additive, config, options);
  return { hidden, additive };
}

/**
 * SViTT's text encoder: BERT (uncased) embeddings and the text-only layers. Weight keys
 * are BertModel's; in the retrieval checkpoint they sit under "text_encoder.".
 */
export const textModel: ModelDefinition<TextModelSpec> = {
  name: "text",
  summary: "SViTT text encoder (BERT): token ids -> text token embeddings",
  checkpointPrefix: "text_encoder.",
  schema: textSpecSchema,
  flags: TEXT_FLAGS,
  framesPath: null,
  layersPath: null,
  preset: () => ({ text: BERT_BASE, batch: 1, textLength: MAX_TEXT_LENGTH }),
  check: checkTextSpec,
  dense: (spec) => spec,
  describe: (spec) =>
    `BERT text encoder (hidden ${spec.text.hiddenSize}, ${spec.text.fusionLayer} text layers), ${spec.batch} caption${spec.batch === 1 ? "" : "s"} of ${spec.textLength} tokens`,
  build: (spec, options = {}) => {
    checkTextSpec(spec);
    const b = new GraphBuilder(`bert_text_${spec.textLength}t`);
    const shape = [spec.batch, spec.textLength];
    const ids = b.input("input_ids", { dtype: "i32", shape });
    const mask = b.input("attention_mask", { dtype: "i32", shape });
    const { hidden } = textEncoder(b, ids, mask, spec.text, {
      diagnostics: options.diagnostics ?? false,
    });
    b.output("last_hidden_state", hidden);
    return { graph: b.build(), sparsity: NO_SPARSITY };
  },
  syntheticInputs: (_graph, spec, seed) =>
    syntheticText(spec.batch, spec.textLength, spec.text.vocabSize, seed),
};
