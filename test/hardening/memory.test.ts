/**
 * The memory estimate and size rules (src/memory.ts) on graphs small enough to work out by
 * hand, and on the SViTT encoder against figures computed here from its shapes.
 */
import { describe, expect, it } from "vitest";
import { compileVision } from "../../src/api/compile.js";
import { compileWithinBudget } from "../../src/api/run.js";
import { parseByteSize } from "../../src/config/flags.js";
import { ConfigError } from "../../src/ir/errors.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import {
  checkGraphSizes,
  checkMemoryBudget,
  combineEstimates,
  estimateMemory,
  formatBytes,
  MAX_TENSOR_ELEMENTS,
  ResourceError,
} from "../../src/memory.js";
import { MODELS } from "../../src/models/index.js";

const f32 = (shape: number[]) => ({ dtype: "f32" as const, shape });

/**
 * x [1,4,8] -> linear(w1 [16,8]) y [1,4,16] -> gelu z -> reshape [4,16] (a view of z)
 * -> linear(w2 [8,16]) out [4,8]. Bytes: x 128, w1 512, w2 512, y 256, z 256, out 128.
 * Live after each step: y: {y} 256; gelu: {y, z} 512, then y is dead; reshape: {z} 256;
 * linear 2: {z, out} 384. Peak 512 at the gelu.
 */
function chain() {
  const b = new GraphBuilder("chain");
  const x = b.input("x", f32([1, 4, 8]));
  const y = b.add1("linear", [x, b.weight("w1", [16, 8])], {}, { name: "fc1" });
  const z = b.add1("gelu", [y], {}, { name: "act" });
  const flat = b.add1("reshape", [z], { shape: [4, 16] });
  b.output("out", b.add1("linear", [flat, b.weight("w2", [8, 16])], {}, { name: "fc2" }));
  return b.build();
}

describe("estimateMemory", () => {
  it("adds weights, inputs and the largest live set, a reshape being a view", () => {
    const estimate = estimateMemory(chain());
    expect(estimate.weightBytes).toBe(1024);
    expect(estimate.inputBytes).toBe(128);
    expect(estimate.constantBytes).toBe(0);
    expect(estimate.peakActivationBytes).toBe(512);
    expect(estimate.peakAt).toContain('gelu "act"');
    expect(estimate.totalBytes).toBe(1024 + 128 + 512);
  });

  it("keeps graph outputs alive to the end", () => {
    // two outputs: a [1,64] is an output computed first, then b [1,64] from x alone
    const b = new GraphBuilder("outputs");
    const x = b.input("x", f32([1, 8]));
    b.output("a", b.add1("linear", [x, b.weight("wa", [64, 8])], {}));
    b.output("b", b.add1("linear", [x, b.weight("wb", [64, 8])], {}));
    // at the second linear both outputs (256 B each) are live
    expect(estimateMemory(b.build()).peakActivationBytes).toBe(512);
  });

  it("counts dense attention's score matrix and its bias as workspace", () => {
    // q = k = v [2, 6, 4], 2 heads: scores B·H·Nq·Nk = 2·2·6·6 = 144 floats = 576 B,
    // on top of the context [2,6,4] (192 B) and the class-token probabilities [2,2,1,6] (96 B)
    const b = new GraphBuilder("attn");
    const q = b.input("q", f32([2, 6, 4]));
    const [context] = b.add("attention", [q, q, q], {
      heads: 2,
      numCls: 1,
      probs: "cls",
      mask: false,
      relPosBias: null,
    });
    b.output("context", context!);
    const estimate = estimateMemory(b.build());
    expect(estimate.peakActivationBytes).toBe(576 + 192 + 96);
  });

  it("on the 8-frame SViTT encoder: weights as its parameters, the peak at an attention", () => {
    const { graph, cost } = compileVision(MODELS.vision.preset({ frames: 8, variant: "svitt" }));
    const estimate = estimateMemory(graph);
    expect(estimate.weightBytes).toBe(cost.totals.weightBytes);
    // pixel_values [1, 8, 3, 224, 224] f32
    expect(estimate.inputBytes).toBe(8 * 3 * 224 * 224 * 4);
    // At least the largest single tensor, the MLP's [1, 1569, 3072] (before any drop), and
    // its input [1, 1569, 768] live beside it.
    expect(estimate.peakActivationBytes).toBeGreaterThanOrEqual(4 * 1569 * (3072 + 768));
    expect(estimate.totalBytes).toBe(
      estimate.weightBytes +
        estimate.constantBytes +
        estimate.inputBytes +
        estimate.peakActivationBytes,
    );
  });

  it("combines parts held at once: every part's weights, one part's activations", () => {
    const one = estimateMemory(chain());
    const both = combineEstimates([one, one]);
    expect(both.weightBytes).toBe(2 * one.weightBytes);
    expect(both.peakActivationBytes).toBe(one.peakActivationBytes);
    expect(both.inputBytes).toBe(one.inputBytes);
  });
});

describe("size rules and the budget", () => {
  it("refuses a tensor over 2^31 - 1 elements, naming the node", () => {
    const b = new GraphBuilder("huge");
    const x = b.input("x", f32([1, 2 ** 16, 8]));
    b.output("y", b.add1("linear", [x, b.weight("w", [2 ** 15 + 1, 8])], {}, { name: "wide" }));
    expect(() => checkGraphSizes(b.build(), "the model", { workspace: false })).toThrow(
      /the model is too large: %\d+ linear "wide" makes a f32\[1,65536,32769\] tensor of .* more than the 2147483647/,
    );
    expect(MAX_TENSOR_ELEMENTS).toBe(2147483647);
  });

  it("refuses an attention score matrix over 2^31 - 1 elements only with workspace", () => {
    const b = new GraphBuilder("scores");
    const q = b.input("q", f32([1, 2 ** 15, 4]));
    const [context] = b.add("attention", [q, q, q], {
      heads: 4,
      numCls: 1,
      probs: "cls",
      mask: false,
      relPosBias: null,
    });
    b.output("c", context!);
    const graph = b.build();
    expect(() => checkGraphSizes(graph, "m", { workspace: false })).not.toThrow();
    // 4 heads x 2^15 x 2^15 = 2^32 scores
    expect(() => checkGraphSizes(graph, "m", { workspace: true })).toThrow(/4\.29e\+9/);
  });

  it("refuses over budget with the estimate, its parts and the limit", () => {
    const estimate = estimateMemory(chain());
    const budget = { limitBytes: 1000, source: "--max-memory 1000" };
    expect(() => checkMemoryBudget(estimate, budget, "chain")).toThrow(ResourceError);
    expect(() => checkMemoryBudget(estimate, budget, "chain")).toThrow(
      "chain needs an estimated 1.63 KiB (weights 1.00 KiB, inputs 128 B, activations 512 B at",
    );
    expect(() =>
      checkMemoryBudget(estimate, { limitBytes: 1664, source: "x" }, "chain"),
    ).not.toThrow();
    expect(() =>
      checkMemoryBudget(estimate, { limitBytes: 1700, source: "x" }, "chain", [
        { what: "a file", bytes: 100 },
      ]),
    ).toThrow("+ a file 100 B");
  });

  it("compileWithinBudget refuses before compiling what the dense graph already shows", () => {
    const spec = MODELS.vision.preset({ frames: 4000, variant: "svitt" });
    const start = performance.now();
    expect(() => compileWithinBudget(MODELS.vision, spec)).toThrow(/4000 frames is too large/);
    // the sparsity passes at 4000 frames take seconds; the dense graph's check, milliseconds
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it("the vision spec refuses clips whose first tensors exceed the limit, unbuilt", () => {
    const base = MODELS.vision.preset({ frames: 1, variant: "dense" });
    const spec = { ...base, model: { ...base.model, imageSize: 65536, patchSize: 1 } };
    expect(() => MODELS.vision.check(spec)).toThrow(ConfigError);
    expect(() => MODELS.vision.check(spec)).toThrow(/model\.imageSize.*2\^31 - 1/);
  });
});

describe("formatting and parsing sizes", () => {
  it("formats bytes in binary units", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.50 KiB");
    expect(formatBytes(25 * 2 ** 30)).toBe("25.0 GiB");
    expect(formatBytes(300 * 2 ** 20)).toBe("300 MiB");
  });

  it.each([
    ["8GiB", 8 * 2 ** 30],
    ["8G", 8 * 2 ** 30],
    ["8gb", 8e9],
    ["512MiB", 512 * 2 ** 20],
    ["1.5GiB", 1.5 * 2 ** 30],
    ["1048576", 2 ** 20],
  ])("parses --max-memory %s", (text, bytes) => {
    expect(parseByteSize("--max-memory", "maxMemory", text)).toBe(bytes);
  });

  it.each(["", "lots", "1e9", "0x10GiB", "-1GiB", "10", "8 parsecs", "8constructor", "2EiB"])(
    "refuses --max-memory %j naming the field",
    (text) => {
      expect(() => parseByteSize("--max-memory", "maxMemory", text)).toThrow(
        /config field "maxMemory": --max-memory must be a size/,
      );
    },
  );
});
