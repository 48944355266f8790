import { describe, expect, it } from "vitest";
import { compileVision } from "../../src/api/compile.js";
import { ConfigError } from "../../src/ir/errors.js";
import {
  type AttentionSparsity,
  BEIT_BASE,
  checkBeitConfig,
  checkVisionSpec,
  type SparsityConfig,
  type VisionModelSpec,
} from "../../src/models/config.js";
import { curriculumKeepRate, svittSparsity, visionPreset } from "../../src/models/presets.js";
import { smallSpec } from "./support.js";

function configError(body: () => unknown): ConfigError {
  try {
    body();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const ATTENTION: AttentionSparsity = {
  blockSize: 8,
  local: 1,
  random: 2,
  seed: 0,
  perHead: false,
  padding: "reference",
};

function sparse(attention: Partial<AttentionSparsity> = {}, keepRate = 0.7): VisionModelSpec {
  const sparsity: SparsityConfig = {
    attention: { ...ATTENTION, ...attention },
    tokens: { keepRate, dropAfter: [0] },
    tokenOrder: "none",
  };
  return smallSpec({ sparsity });
}

describe("vision spec validation", () => {
  it("accepts the presets and a small sparse spec", () => {
    for (const frames of [4, 8, 16])
      expect(() => checkVisionSpec(visionPreset(frames))).not.toThrow();
    expect(() => checkVisionSpec(sparse())).not.toThrow();
  });

  for (const blockSize of [0, -8, 2.5]) {
    it(`rejects block size ${blockSize}`, () => {
      const error = configError(() => checkVisionSpec(sparse({ blockSize })));
      expect(error.field).toBe("sparsity.attention.blockSize");
      expect(error.message).toContain('config field "sparsity.attention.blockSize"');
    });
  }

  for (const keepRate of [0, -0.5, 1.01, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`rejects keep rate ${keepRate}`, () => {
      const error = configError(() => checkVisionSpec(sparse({}, keepRate)));
      expect(error.field).toBe("sparsity.tokens.keepRate");
      expect(error.message).toContain("(0, 1]");
    });
  }

  it("accepts keep rate 1 and tiny positive keep rates", () => {
    expect(() => checkVisionSpec(sparse({}, 1))).not.toThrow();
    expect(() => checkVisionSpec(sparse({}, 1e-9))).not.toThrow();
  });

  it("rejects even local windows and accepts odd ones", () => {
    for (const local of [2, 4]) {
      const error = configError(() => checkVisionSpec(sparse({ local })));
      expect(error.field).toBe("sparsity.attention.local");
      expect(error.message).toContain("odd");
    }
    expect(configError(() => checkVisionSpec(sparse({ local: -1 }))).field).toBe(
      "sparsity.attention.local",
    );
    expect(() => checkVisionSpec(sparse({ local: 3, random: 1 }))).not.toThrow();
    expect(() => checkVisionSpec(sparse({ local: 0, random: 1 }))).not.toThrow();
  });

  it("rejects a hidden size not divisible by the heads, naming model.hiddenSize", () => {
    const error = configError(() => checkVisionSpec(smallSpec({ model: { hiddenSize: 30 } })));
    expect(error.field).toBe("model.hiddenSize");
    expect(error.message).toContain("not divisible");
    expect(configError(() => checkBeitConfig({ ...BEIT_BASE, numHeads: 5 })).field).toBe(
      "model.hiddenSize",
    );
  });

  it("rejects more than one CLS token with relative position bias", () => {
    const error = configError(() => checkVisionSpec(smallSpec({ model: { numClsTokens: 2 } })));
    expect(error.field).toBe("model.numClsTokens");
  });

  it("rejects a patch size that does not divide the image", () => {
    expect(configError(() => checkVisionSpec(smallSpec({ model: { patchSize: 5 } }))).field).toBe(
      "model.patchSize",
    );
  });

  it("rejects drop layers outside the model or listed twice", () => {
    const spec = (dropAfter: number[]) =>
      smallSpec({
        sparsity: { attention: null, tokens: { keepRate: 0.5, dropAfter }, tokenOrder: "none" },
      });
    expect(configError(() => checkVisionSpec(spec([3]))).message).toContain(
      "layer 3 outside [0, 2]",
    );
    expect(configError(() => checkVisionSpec(spec([1, 1]))).message).toContain("listed twice");
  });

  it("rejects frames and batch below 1", () => {
    expect(configError(() => checkVisionSpec(smallSpec({ frames: 0 }))).field).toBe("frames");
    expect(configError(() => checkVisionSpec(smallSpec({ batch: 0 }))).field).toBe("batch");
    expect(configError(() => visionPreset(0)).field).toBe("frames");
  });
});

describe("per-layer pattern validation at compile time", () => {
  it("rejects more random blocks than non-local blocks under padding masked, naming the layer", () => {
    // 32 tokens in blocks of 8: 4 blocks, 3 non-local; 4 random blocks do not fit
    const error = configError(() => compileVision(sparse({ random: 4, padding: "masked" })));
    expect(error.field).toBe("sparsity.attention.random");
    expect(error.message).toContain("layer 0");
    expect(error.message).toContain("allowed 0..3");
  });

  it("rejects more random blocks than blocks under padding reference", () => {
    // the reference's topk takes at most M = 4 blocks (a local one again when random = M)
    const error = configError(() => compileVision(sparse({ random: 5 })));
    expect(error.field).toBe("sparsity.attention.random");
    expect(error.message).toContain("layer 0");
    expect(error.message).toContain("allowed 0..4");
  });

  it("names the first layer after a token drop where the pattern stops fitting", () => {
    // layer 0 has 32 tokens (4 blocks: random 4 fits under reference padding, repeating
    // the local block); after the drop, 23 tokens make 3 blocks, fewer than 4
    const error = configError(() => compileVision(sparse({ random: 4 })));
    expect(error.field).toBe("sparsity.attention.random");
    expect(error.message).toContain("layer 1 (23 local tokens)");
  });

  it("rejects a local window wider than the blocks", () => {
    const error = configError(() => compileVision(sparse({ blockSize: 16, local: 3, random: 0 })));
    expect(error.field).toBe("sparsity.attention.local");
    expect(error.message).toContain("layer 0");
  });
});

describe("presets", () => {
  it("follows the curriculum 0.7 / 0.6 / 0.5 and the SViTT pattern", () => {
    expect([1, 4, 5, 8, 9, 16, 32].map(curriculumKeepRate)).toEqual([
      0.7, 0.7, 0.6, 0.6, 0.5, 0.5, 0.5,
    ]);
    expect(svittSparsity(8)).toEqual({
      attention: {
        blockSize: 56,
        local: 1,
        random: 3,
        seed: 0,
        perHead: false,
        padding: "reference",
      },
      tokens: { keepRate: 0.6, dropAfter: [3, 6, 9] },
      tokenOrder: "none",
    });
  });
});
