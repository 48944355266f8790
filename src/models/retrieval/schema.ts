import { z } from "zod";
import { type FlagSpec, mountFlags } from "../../config/flags.js";
import { int } from "../../config/schema.js";
import { CROSS_MODAL_FLAGS, crossModalSchema } from "../fusion/schema.js";
import { bertConfigSchema, MAX_CAPTIONS, TEXT_LENGTH_FLAG } from "../text/schema.js";
import { VISION_FLAGS, visionSpecSchema } from "../vision/schema.js";
import type { RetrievalModelSpec } from "./index.js";

export const retrievalSpecSchema: z.ZodType<RetrievalModelSpec> = z.strictObject({
  vision: visionSpecSchema,
  text: bertConfigSchema,
  texts: int(1, MAX_CAPTIONS),
  textLength: int(1, 1 << 16),
  embedDim: int(1, 1 << 16),
  crossModal: crossModalSchema.nullable(),
});

/** The vision flags (with --videos for the vision batch), caption and cross-modal flags. */
export const RETRIEVAL_FLAGS: readonly FlagSpec[] = [
  ...mountFlags(
    VISION_FLAGS.map((f) =>
      f.flag === "--batch"
        ? {
            ...f,
            flag: "--video-batch",
            placeholder: "<Bv>",
            help: "videos per batch of the video encoder (default 1)",
          }
        : f,
    ),
    "vision",
  ),
  {
    flag: "--texts",
    placeholder: "<Bt>",
    path: "texts",
    kind: "int",
    help: "captions per batch (default 1)",
  },
  TEXT_LENGTH_FLAG,
  ...CROSS_MODAL_FLAGS,
];
