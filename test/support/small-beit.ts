import { BEIT_BASE, type BeitConfig } from "../../src/models/config.js";

/**
 * The small BEiT of the backend tests: hidden 64, 4 heads, 2 layers, FFN 128, 32 x 32
 * frames in 8 x 8 patches (16 tokens per frame). Everything else as BEiT-base (relative
 * position bias, layer scale, LayerNorm eps 1e-12).
 */
export const SMALL_BEIT: BeitConfig = {
  ...BEIT_BASE,
  hiddenSize: 64,
  numHeads: 4,
  numLayers: 2,
  intermediateSize: 128,
  imageSize: 32,
  patchSize: 8,
};
