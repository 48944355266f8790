import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../../src/ir/builder.js";
import { f32Tensor } from "../../../src/ir/tensor.js";
import { expectClose, randomTensor, run, values } from "./helpers.js";

describe("patchEmbed", () => {
  it("is a stride-p convolution per frame, patches row-major, frames in order", () => {
    // B=2, T=2, Cin=2, 4x6 pixels, p=2 -> 2x3 patches per frame, C=3.
    const [bsz, frames, cin, hpx, wpx, p, hidden] = [2, 2, 2, 4, 6, 2, 3];
    const pixels = randomTensor([bsz, frames, cin, hpx, wpx], 60);
    const w = randomTensor([hidden, cin, p, p], 61);
    const bias = randomTensor([hidden], 62);
    const b = new GraphBuilder("t");
    const x = b.input("pixels", { dtype: "f32", shape: [bsz, frames, cin, hpx, wpx] });
    b.output(
      "y",
      b.add1("patchEmbed", [x, b.weight("w", [hidden, cin, p, p]), b.weight("b", [hidden])], {
        patchSize: p,
      }),
    );
    const y = run(b.build(), { w, b: bias }, { pixels }).y!;
    const hp = hpx / p;
    const wp = wpx / p;
    expect(y.shape).toEqual([bsz, frames * hp * wp, hidden]);
    const pix = (bb: number, t: number, ci: number, yy: number, xx: number) =>
      pixels.data[(((bb * frames + t) * cin + ci) * hpx + yy) * wpx + xx]!;
    const expected: number[] = [];
    for (let bb = 0; bb < bsz; bb++)
      for (let t = 0; t < frames; t++)
        for (let py = 0; py < hp; py++)
          for (let px = 0; px < wp; px++)
            for (let c = 0; c < hidden; c++) {
              let s = bias.data[c]!;
              for (let ci = 0; ci < cin; ci++)
                for (let ky = 0; ky < p; ky++)
                  for (let kx = 0; kx < p; kx++)
                    s +=
                      w.data[((c * cin + ci) * p + ky) * p + kx]! *
                      pix(bb, t, ci, py * p + ky, px * p + kx);
              expected.push(s);
            }
    expectClose(values(y), expected, 1e-6);
  });

  it("places a single bright pixel in the right token and channel", () => {
    // One frame of 1 channel, 4x4 pixels, p = 2; weight picks the bottom-right pixel of a patch.
    const pixels = f32Tensor([1, 1, 1, 4, 4]);
    pixels.data[2 * 4 + 3] = 5; // row 2, column 3 -> patch (1, 1), inside offset (0, 1)
    const w = f32Tensor([2, 1, 2, 2], new Float32Array([0, 1, 0, 0, 0, 0, 0, 1]));
    const bias = f32Tensor([2], new Float32Array([0.5, -0.5]));
    const b = new GraphBuilder("t");
    const x = b.input("pixels", { dtype: "f32", shape: [1, 1, 1, 4, 4] });
    b.output(
      "y",
      b.add1("patchEmbed", [x, b.weight("w", [2, 1, 2, 2]), b.weight("b", [2])], { patchSize: 2 }),
    );
    const y = values(run(b.build(), { w, b: bias }, { pixels }).y);
    // Token 3 = patch (1, 1); channel 0 weighs offset (0, 1).
    expect(y).toEqual([0.5, -0.5, 0.5, -0.5, 0.5, -0.5, 5.5, -0.5]);
  });
});

describe("prependTokens", () => {
  it("broadcasts a batch-1 prefix and keeps a batch-B prefix per item", () => {
    const x = randomTensor([2, 3, 4], 70);
    for (const prefixBatch of [1, 2]) {
      const prefix = randomTensor([prefixBatch, 2, 4], 71 + prefixBatch);
      const b = new GraphBuilder("t");
      const pi = b.input("p", { dtype: "f32", shape: [prefixBatch, 2, 4] });
      const xi = b.input("x", { dtype: "f32", shape: [2, 3, 4] });
      b.output("y", b.add1("prependTokens", [pi, xi], {}));
      const y = run(b.build(), {}, { p: prefix, x }).y!;
      expect(y.shape).toEqual([2, 5, 4]);
      const expected: number[] = [];
      for (let bb = 0; bb < 2; bb++) {
        const pb = prefixBatch === 1 ? 0 : bb;
        expected.push(...prefix.data.subarray(pb * 8, pb * 8 + 8));
        expected.push(...x.data.subarray(bb * 12, bb * 12 + 12));
      }
      expect(values(y)).toEqual(expected);
    }
  });
});

describe("meanTokens", () => {
  it("averages tokens skip..N-1", () => {
    const x = randomTensor([2, 5, 3], 80);
    for (const skip of [0, 1, 4]) {
      const b = new GraphBuilder("t");
      b.output(
        "y",
        b.add1("meanTokens", [b.input("x", { dtype: "f32", shape: [2, 5, 3] })], { skip }),
      );
      const y = run(b.build(), {}, { x }).y!;
      expect(y.shape).toEqual([2, 3]);
      const expected: number[] = [];
      for (let bb = 0; bb < 2; bb++)
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let n = skip; n < 5; n++) s += x.data[(bb * 5 + n) * 3 + c]!;
          expected.push(s / (5 - skip));
        }
      expectClose(values(y), expected, 1e-7);
    }
  });
});
