import { ConfigError } from "../ir/errors.js";
import { BEIT_BASE, type SparsityConfig, type VisionModelSpec } from "./config.js";

/**
 * SViTT's sparsity curriculum (Li et al., CVPR 2023, and the released configs): block 56,
 * local 1, random 3; tokens dropped after layers 3, 6 and 9 with a keep rate that falls as
 * clips get longer: 0.7 at 4 frames, 0.6 at 8, 0.5 at 16 (and beyond).
 */
export function curriculumKeepRate(frames: number): number {
  if (frames <= 4) return 0.7;
  if (frames <= 8) return 0.6;
  return 0.5;
}

export const SVITT_BLOCK_SIZE = 56;
export const SVITT_DROP_AFTER: readonly number[] = [3, 6, 9];

/**
 * SViTT's sparsity at a clip length. A single image (1 frame) keeps every token: its 196
 * tokens make 4 blocks of 56, and the drops after layers 3 and 6 would leave 97 tokens in
 * 2 blocks, fewer than the 3 random blocks each query block reads (the authors' code
 * cannot run that either: torch.topk raises). From 2 frames on the whole curriculum
 * applies; where a layer has fewer free blocks than random ones (2 frames, layers 10-11:
 * 3 blocks) rows repeat a block as the reference's topk does (padding "reference").
 */
export function svittSparsity(frames: number, seed = 0): SparsityConfig {
  return {
    attention: {
      blockSize: SVITT_BLOCK_SIZE,
      local: 1,
      random: 3,
      seed,
      perHead: false,
      padding: "reference",
    },
    tokens:
      frames === 1 ? null : { keepRate: curriculumKeepRate(frames), dropAfter: SVITT_DROP_AFTER },
    tokenOrder: "none",
  };
}

export const DENSE_SPARSITY: SparsityConfig = { attention: null, tokens: null, tokenOrder: "none" };

export type Variant = "svitt" | "dense";

/** The SViTT (or dense) BEiT-base vision encoder for a clip of `frames` frames. */
export function visionPreset(
  frames: number,
  variant: Variant = "svitt",
  batch = 1,
  layers: number = BEIT_BASE.numLayers,
): VisionModelSpec {
  if (!(Number.isInteger(frames) && frames >= 1)) {
    throw new ConfigError("frames", `must be an integer >= 1, got ${frames}`);
  }
  const sparsity = variant === "svitt" ? svittSparsity(frames) : DENSE_SPARSITY;
  // A shallower encoder keeps the drops that fall inside it (after layer 1 of 2: none).
  const tokens =
    sparsity.tokens === null
      ? null
      : { ...sparsity.tokens, dropAfter: sparsity.tokens.dropAfter.filter((l) => l < layers) };
  return {
    model: layers === BEIT_BASE.numLayers ? BEIT_BASE : { ...BEIT_BASE, numLayers: layers },
    frames,
    batch,
    sparsity: { ...sparsity, tokens },
  };
}
