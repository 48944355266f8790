import { z } from "zod";
import type { FlagSpec } from "../../config/flags.js";
import { int, intList, keepRate } from "../../config/schema.js";
import type { CrossModalSparsity } from "../definition.js";
import { bertConfigSchema, TEXT_LENGTH_FLAG } from "../text/schema.js";
import type { FusionModelSpec } from "./index.js";

export const crossModalSchema: z.ZodType<CrossModalSparsity> = z.strictObject({
  keepRate: keepRate(),
  layers: intList(0, 999),
});

export const fusionSpecSchema: z.ZodType<FusionModelSpec> = z.strictObject({
  text: bertConfigSchema,
  batch: int(1, 4096),
  textLength: int(1, 1 << 16),
  visualTokens: int(2, 1 << 20),
  crossModal: crossModalSchema.nullable(),
});

/**
 * The released configs name text-guided pruning as joint_encoder_args (keep 0.1 after
 * fusion layer 1, i.e. BERT layer 10 of BERT-base with fusion_layer 9), although their
 * code never reads it; --cross-keep-rate switches it on with that layer unless
 * --cross-drop-at says otherwise.
 */
export const RELEASED_CROSS_MODAL: CrossModalSparsity = { keepRate: 0.1, layers: [10] };

/** Cross-modal pruning flags (paths relative to the spec holding `crossModal`). */
export const CROSS_MODAL_FLAGS: readonly FlagSpec[] = [
  {
    flag: "--cross-keep-rate",
    placeholder: "<r>",
    path: "crossModal.keepRate",
    kind: "number",
    help: "keep rate of text-guided visual token pruning in the fusion layers (default: off)",
    enable: { path: "crossModal", value: RELEASED_CROSS_MODAL },
  },
  {
    flag: "--cross-drop-at",
    placeholder: "<layers>",
    path: "crossModal.layers",
    kind: "intList",
    help: "BERT layers (absolute, as token_drop_loc) after whose cross-attention visual tokens are dropped (default 10)",
    enable: { path: "crossModal", value: RELEASED_CROSS_MODAL },
  },
];

export const FUSION_FLAGS: readonly FlagSpec[] = [
  {
    flag: "--batch",
    placeholder: "<P>",
    path: "batch",
    kind: "int",
    help: "(video, caption) pairs per batch (default 1)",
  },
  TEXT_LENGTH_FLAG,
  {
    flag: "--visual-tokens",
    placeholder: "<n>",
    path: "visualTokens",
    kind: "int",
    help: "visual tokens per pair, CLS included (default: what the vision preset leaves)",
  },
  ...CROSS_MODAL_FLAGS,
];
