/**
 * The k1 case's architecture (../shared/conformance/video-text/k1_retrieval_pixels.json,
 * module_spec) as a sprig config file for the retrieval model: what a user writes to run
 * the small model its checkpoints (../shared/conformance/inputs/k1_checkpoint*.pth) hold.
 */
export const K1_CONFIG = {
  vision: {
    frames: 2,
    batch: 3,
    model: {
      hiddenSize: 64,
      numHeads: 4,
      numLayers: 3,
      intermediateSize: 128,
      imageSize: 32,
      patchSize: 8,
    },
    sparsity: {
      attention: { blockSize: 8, local: 1, random: 2 },
      tokens: { keepRate: 0.7, dropAfter: [1] },
    },
  },
  text: {
    vocabSize: 229,
    hiddenSize: 48,
    numHeads: 4,
    numLayers: 4,
    intermediateSize: 96,
    maxPositions: 16,
    fusionLayer: 2,
    encoderWidth: 64,
  },
  texts: 4,
  textLength: 12,
  embedDim: 32,
};
