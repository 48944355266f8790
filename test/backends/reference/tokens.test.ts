import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../../src/ir/builder.js";
import { f32Tensor, type HostTensor, i32Tensor } from "../../../src/ir/tensor.js";
import { expectClose, randomTensor, run, values } from "./helpers.js";

describe("tokenScores", () => {
  it("averages probs[b, :, row, skip:] over heads", () => {
    const probs = randomTensor([2, 3, 4, 6], 300);
    for (const [row, skip] of [
      [0, 1],
      [2, 0],
      [3, 5],
    ] as const) {
      const b = new GraphBuilder("t");
      b.output(
        "s",
        b.add1("tokenScores", [b.input("p", { dtype: "f32", shape: [2, 3, 4, 6] })], { row, skip }),
      );
      const s = run(b.build(), {}, { p: probs }).s!;
      expect(s.shape).toEqual([2, 6 - skip]);
      const expected: number[] = [];
      for (let bb = 0; bb < 2; bb++)
        for (let j = 0; j < 6 - skip; j++) {
          let sum = 0;
          for (let h = 0; h < 3; h++) sum += probs.data[((bb * 3 + h) * 4 + row) * 6 + skip + j]!;
          expected.push(sum / 3);
        }
      expectClose(values(s), expected, 1e-7);
    }
  });
});

function topK(scores: HostTensor, k: number): HostTensor {
  const b = new GraphBuilder("t");
  b.output("i", b.add1("topK", [b.input("s", { dtype: "f32", shape: scores.shape })], { k }));
  return run(b.build(), {}, { s: scores }).i!;
}

describe("topK", () => {
  it("returns the indices of the k largest, sorted ascending, per batch row", () => {
    const scores = f32Tensor(
      [2, 6],
      new Float32Array([0.1, 0.9, 0.3, 0.8, -1, 0.5, 5, 4, 3, 2, 1, 0]),
    );
    const idx = topK(scores, 3);
    expect(idx.dtype).toBe("i32");
    expect(idx.shape).toEqual([2, 3]);
    expect(values(idx)).toEqual([1, 3, 5, 0, 1, 2]);
  });

  it("prefers the lower index on exact ties", () => {
    const scores = f32Tensor([1, 6], new Float32Array([0.5, 0.7, 0.5, 0.5, 0.7, 0.1]));
    expect(values(topK(scores, 1))).toEqual([1]);
    expect(values(topK(scores, 2))).toEqual([1, 4]);
    expect(values(topK(scores, 3))).toEqual([0, 1, 4]);
    expect(values(topK(scores, 4))).toEqual([0, 1, 2, 4]);
    const flat = f32Tensor([1, 5], new Float32Array(5).fill(2));
    expect(values(topK(flat, 2))).toEqual([0, 1]);
  });

  it("agrees with sorting by (score desc, index asc) on random rows; k = L keeps everything", () => {
    const scores = randomTensor([3, 40], 310);
    // Create some ties.
    scores.data[5] = scores.data[6]!;
    scores.data[45] = scores.data[70]!;
    for (const k of [1, 7, 28, 40]) {
      const got = values(topK(scores, k));
      for (let b = 0; b < 3; b++) {
        const row = Array.from(scores.data.subarray(b * 40, b * 40 + 40));
        const order = row
          .map((s, i) => ({ s, i }))
          .sort((x, y) => y.s - x.s || x.i - y.i)
          .slice(0, k)
          .map((e) => e.i)
          .sort((x, y) => x - y);
        expect(got.slice(b * k, b * k + k)).toEqual(order);
      }
    }
  });
});

function gather(x: HostTensor, idx: HostTensor, axis: number, keepPrefix: number): HostTensor {
  const b = new GraphBuilder("t");
  const xi = b.input("x", { dtype: x.dtype, shape: x.shape });
  const ii = b.input("idx", { dtype: "i32", shape: idx.shape });
  b.output("y", b.add1("gather", [xi, ii], { axis, keepPrefix }));
  return run(b.build(), {}, { x, idx }).y!;
}

describe("gather", () => {
  it("keeps the CLS prefix and picks tokens along axis 1 of hidden states [B, N, C]", () => {
    const x = randomTensor([2, 5, 3], 320);
    const idx = i32Tensor([2, 2], new Int32Array([3, 0, 1, 2]));
    const y = gather(x, idx, 1, 1);
    expect(y.shape).toEqual([2, 3, 3]);
    const row = (b: number, n: number) =>
      Array.from(x.data.subarray((b * 5 + n) * 3, (b * 5 + n) * 3 + 3));
    expect(values(y)).toEqual([
      ...row(0, 0),
      ...row(0, 4),
      ...row(0, 1),
      ...row(1, 0),
      ...row(1, 2),
      ...row(1, 3),
    ]);
  });

  it("maps an i32 token index [1, L] through per-batch indices (x batch broadcast)", () => {
    const tokenIdx = i32Tensor([1, 6], new Int32Array([10, 11, 12, 13, 14, 15]));
    const keep = i32Tensor([2, 3], new Int32Array([0, 2, 5, 1, 3, 4]));
    const y = gather(tokenIdx, keep, 1, 0);
    expect(y.dtype).toBe("i32");
    expect(y.shape).toEqual([2, 3]);
    expect(values(y)).toEqual([10, 12, 15, 11, 13, 14]);
  });

  it("gathers a mask [B, 1, 1, L] along axis 3 with a batch-1 index (idx batch broadcast)", () => {
    const mask = f32Tensor(
      [2, 1, 1, 5],
      new Float32Array([0, -1, -2, -3, -4, 0, -10, -20, -30, -40]),
    );
    const keep = i32Tensor([1, 2], new Int32Array([1, 3]));
    const y = gather(mask, keep, 3, 1);
    expect(y.shape).toEqual([2, 1, 1, 3]);
    expect(values(y)).toEqual([0, -2, -4, 0, -20, -40]);
  });

  it("gathers a middle axis with trailing and leading extents", () => {
    // x [2, 2, 4, 3], axis 2, keepPrefix 1, idx [2, 2].
    const x = randomTensor([2, 2, 4, 3], 330);
    const idx = i32Tensor([2, 2], new Int32Array([2, 0, 1, 1]));
    const y = gather(x, idx, 2, 1);
    expect(y.shape).toEqual([2, 2, 3, 3]);
    const expected: number[] = [];
    for (let b = 0; b < 2; b++)
      for (let o = 0; o < 2; o++)
        for (let p = 0; p < 3; p++) {
          const src = p < 1 ? p : 1 + idx.data[b * 2 + p - 1]!;
          for (let e = 0; e < 3; e++) expected.push(x.data[((b * 2 + o) * 4 + src) * 3 + e]!);
        }
    expect(values(y)).toEqual(expected);
  });

  it("throws a RangeError naming the node for an out-of-range index", () => {
    const x = randomTensor([1, 4, 2], 340);
    expect(() => gather(x, i32Tensor([1, 2], new Int32Array([0, 3])), 1, 1)).toThrow(RangeError);
    expect(() => gather(x, i32Tensor([1, 2], new Int32Array([0, 3])), 1, 1)).toThrow(
      /%\d+ gather.*index 3/,
    );
    expect(() => gather(x, i32Tensor([1, 1], new Int32Array([-1])), 1, 0)).toThrow(RangeError);
    // The last valid index is fine.
    expect(values(gather(x, i32Tensor([1, 1], new Int32Array([2])), 1, 1))).toEqual([
      x.data[0],
      x.data[1],
      x.data[6],
      x.data[7],
    ]);
  });
});
