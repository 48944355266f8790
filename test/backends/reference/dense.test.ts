import { describe, expect, it } from "vitest";
import { erf, erfc } from "../../../backends/reference/kernels/math.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import { f32Tensor, i32Tensor } from "../../../src/ir/tensor.js";
import { expectClose, f32, randomTensor, run, values } from "./helpers.js";

describe("erf", () => {
  const known: [number, number][] = [
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [3, 0.9999779095030014],
    // Near the switch between the two expansions and small arguments.
    [1.9999, 0.9953201979070294],
    [2.0001, 0.9953243313041967],
    [0.1, 0.1124629160182849],
    [1e-10, 1.1283791670955126e-10],
  ];
  it.each(known)("erf(%f) matches to 1e-15 relative", (x, expected) => {
    expect(Math.abs(erf(x) - expected) / expected).toBeLessThan(1e-15);
    expect(erf(-x)).toBe(-erf(x));
  });

  it("is 0 at 0, saturates to exactly ±1, and passes NaN through", () => {
    expect(erf(0)).toBe(0);
    expect(erf(6)).toBe(1);
    expect(erf(-6)).toBe(-1);
    expect(erf(40)).toBe(1);
    expect(erf(Number.POSITIVE_INFINITY)).toBe(1);
    expect(Number.isNaN(erf(Number.NaN))).toBe(true);
  });

  it("erfc keeps relative accuracy in the tail", () => {
    // erfc(3) = 2.209049699858544e-05, erfc(5) = 1.5374597944280349e-12
    expect(Math.abs(erfc(3) - 2.209049699858544e-5) / 2.209049699858544e-5).toBeLessThan(1e-13);
    expect(Math.abs(erfc(5) - 1.5374597944280349e-12) / 1.5374597944280349e-12).toBeLessThan(1e-13);
    expect(Math.abs(erfc(0.5) - 0.4795001221869535)).toBeLessThan(2e-16);
  });

  it("is odd and increasing on a fine grid", () => {
    let prev = -1;
    for (let i = -600; i <= 600; i++) {
      const x = i / 100;
      const y = erf(x);
      expect(y).toBeGreaterThanOrEqual(prev);
      expect(erf(-x)).toBe(-y);
      prev = y;
    }
  });
});

describe("linear", () => {
  const x = randomTensor([2, 3, 5], 1);
  const w = randomTensor([4, 5], 2);
  const bias = randomTensor([4], 3);

  /** y[r, o] = Σ_i x[r, i] w[o, i] (+ b[o]), computed naively. */
  function naive(withBias: boolean): number[] {
    const out: number[] = [];
    for (let r = 0; r < 6; r++) {
      for (let o = 0; o < 4; o++) {
        let s = withBias ? bias.data[o]! : 0;
        for (let i = 0; i < 5; i++) s += x.data[r * 5 + i]! * w.data[o * 5 + i]!;
        out.push(s);
      }
    }
    return out;
  }

  for (const withBias of [true, false]) {
    it(withBias ? "with bias" : "without bias", () => {
      const b = new GraphBuilder("t");
      const xi = b.input("x", { dtype: "f32", shape: [2, 3, 5] });
      const args = [xi, b.weight("w", [4, 5])];
      if (withBias) args.push(b.weight("b", [4]));
      b.output("y", b.add1("linear", args, {}));
      const weights = withBias ? { w, b: bias } : { w };
      const y = run(b.build(), weights, { x }).y!;
      expect(y.shape).toEqual([2, 3, 4]);
      expectClose(values(y), naive(withBias), 1e-6);
    });
  }

  it("handles row counts that are not a multiple of four, and rank-1 input", () => {
    for (const rows of [1, 4, 5, 7, 9]) {
      const xs = randomTensor([rows, 6], 10 + rows);
      const ws = randomTensor([3, 6], 20 + rows);
      const b = new GraphBuilder("t");
      b.output(
        "y",
        b.add1(
          "linear",
          [b.input("x", { dtype: "f32", shape: [rows, 6] }), b.weight("w", [3, 6])],
          {},
        ),
      );
      const y = values(run(b.build(), { w: ws }, { x: xs }).y);
      for (let r = 0; r < rows; r++) {
        for (let o = 0; o < 3; o++) {
          let s = 0;
          for (let i = 0; i < 6; i++) s += xs.data[r * 6 + i]! * ws.data[o * 6 + i]!;
          expect(y[r * 3 + o]).toBe(f32(s));
        }
      }
    }
    const b = new GraphBuilder("t");
    b.output(
      "y",
      b.add1("linear", [b.input("x", { dtype: "f32", shape: [2] }), b.weight("w", [1, 2])], {}),
    );
    const y = run(
      b.build(),
      { w: f32Tensor([1, 2], new Float32Array([3, -1])) },
      { x: f32Tensor([2], new Float32Array([2, 5])) },
    ).y!;
    expect(y.shape).toEqual([1]);
    expect(values(y)).toEqual([1]);
  });
});

describe("add and mul broadcast like NumPy", () => {
  /** out[i, j, k] for a [2,3,4] result from reader functions. */
  function naive(
    shape: [number, number, number],
    a: (i: number, j: number, k: number) => number,
    b: (i: number, j: number, k: number) => number,
    op: (x: number, y: number) => number,
  ): number[] {
    const out: number[] = [];
    for (let i = 0; i < shape[0]; i++)
      for (let j = 0; j < shape[1]; j++)
        for (let k = 0; k < shape[2]; k++) out.push(f32(op(a(i, j, k), b(i, j, k))));
    return out;
  }

  const shapesA = [2, 3, 4];
  const xa = randomTensor(shapesA, 31);
  const readA = (i: number, j: number, k: number) => xa.data[(i * 3 + j) * 4 + k]!;

  const variants: [
    string,
    number[],
    (t: Float32Array) => (i: number, j: number, k: number) => number,
  ][] = [
    ["same shape", [2, 3, 4], (t) => (i, j, k) => t[(i * 3 + j) * 4 + k]!],
    ["trailing vector", [4], (t) => (_i, _j, k) => t[k]!],
    ["column [3,1]", [3, 1], (t) => (_i, j) => t[j]!],
    ["batch-broadcast [1,3,4]", [1, 3, 4], (t) => (_i, j, k) => t[j * 4 + k]!],
    ["middle-broadcast [2,1,4]", [2, 1, 4], (t) => (i, _j, k) => t[i * 4 + k]!],
    ["scalar-like [1]", [1], (t) => () => t[0]!],
  ];

  for (const [name, shape, reader] of variants) {
    for (const op of ["add", "mul"] as const) {
      it(`${op}: [2,3,4] with ${name}, both operand orders`, () => {
        const other = randomTensor(shape, 40 + shape.length);
        const readB = reader(other.data);
        const fn = op === "add" ? (x: number, y: number) => x + y : (x: number, y: number) => x * y;
        for (const swap of [false, true]) {
          const b = new GraphBuilder("t");
          const ia = b.input("a", { dtype: "f32", shape: shapesA });
          const ib = b.input("b", { dtype: "f32", shape });
          b.output("y", b.add1(op, swap ? [ib, ia] : [ia, ib], {}));
          const y = run(b.build(), {}, { a: xa, b: other }).y!;
          expect(y.shape).toEqual([2, 3, 4]);
          expect(values(y)).toEqual(naive([2, 3, 4], readA, readB, fn));
        }
      });
    }
  }

  it("broadcasts both operands at once: [3,1] + [1,4] -> [3,4]", () => {
    const a = f32Tensor([3, 1], new Float32Array([1, 2, 3]));
    const c = f32Tensor([1, 4], new Float32Array([10, 20, 30, 40]));
    const b = new GraphBuilder("t");
    b.output(
      "y",
      b.add1(
        "add",
        [
          b.input("a", { dtype: "f32", shape: [3, 1] }),
          b.input("c", { dtype: "f32", shape: [1, 4] }),
        ],
        {},
      ),
    );
    expect(values(run(b.build(), {}, { a, c }).y)).toEqual([
      11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43,
    ]);
  });
});

describe("gelu", () => {
  it("is x/2 (1 + erf(x/√2)) elementwise", () => {
    const xs = [-8, -3, -1, -0.5, 0, 0.25, 1, 2.5, 7];
    const x = f32Tensor([xs.length], new Float32Array(xs));
    const b = new GraphBuilder("t");
    b.output("y", b.add1("gelu", [b.input("x", { dtype: "f32", shape: [xs.length] })], {}));
    const y = values(run(b.build(), {}, { x }).y);
    // Known values of the exact GELU (x Φ(x)).
    const expected = [
      -4.976768459417428e-15, -0.0040496940948902835, -0.15865525393145705, -0.15426876936299344, 0,
      0.14967658142073093, 0.8413447460685429, 2.4844758366855597, 6.999999999991041,
    ];
    expectClose(y, expected.map(f32), 0, 1e-7);
  });
});

describe("layerNorm", () => {
  it("normalises the last axis with biased variance, then scales and shifts", () => {
    const x = randomTensor([2, 2, 6], 50, 3);
    const gamma = randomTensor([6], 51);
    const beta = randomTensor([6], 52);
    const eps = 1e-5;
    const b = new GraphBuilder("t");
    const xi = b.input("x", { dtype: "f32", shape: [2, 2, 6] });
    b.output("y", b.add1("layerNorm", [xi, b.weight("g", [6]), b.weight("b", [6])], { eps }));
    const y = values(run(b.build(), { g: gamma, b: beta }, { x }).y);
    const expected: number[] = [];
    for (let r = 0; r < 4; r++) {
      const row = Array.from(x.data.subarray(r * 6, r * 6 + 6));
      const mean = row.reduce((s, v) => s + v, 0) / 6;
      const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / 6;
      row.forEach((v, i) => {
        expected.push(((v - mean) / Math.sqrt(variance + eps)) * gamma.data[i]! + beta.data[i]!);
      });
    }
    expectClose(y, expected, 1e-6);
  });

  it("maps a constant row to beta", () => {
    const b = new GraphBuilder("t");
    const xi = b.input("x", { dtype: "f32", shape: [1, 3] });
    b.output(
      "y",
      b.add1("layerNorm", [xi, b.weight("g", [3]), b.weight("b", [3])], { eps: 1e-12 }),
    );
    const y = run(
      b.build(),
      {
        g: f32Tensor([3], new Float32Array([2, 2, 2])),
        b: f32Tensor([3], new Float32Array([0.5, -1, 3])),
      },
      { x: f32Tensor([1, 3], new Float32Array([7, 7, 7])) },
    ).y;
    expect(values(y)).toEqual([0.5, -1, 3]);
  });
});

describe("reshape", () => {
  it("keeps the elements in order, for f32 and i32", () => {
    const b = new GraphBuilder("t");
    b.output(
      "a",
      b.add1("reshape", [b.input("x", { dtype: "f32", shape: [2, 3] })], { shape: [3, 1, 2] }),
    );
    b.output(
      "b",
      b.add1("reshape", [b.input("i", { dtype: "i32", shape: [4] })], { shape: [2, 2] }),
    );
    const out = run(
      b.build(),
      {},
      {
        x: f32Tensor([2, 3], new Float32Array([1, 2, 3, 4, 5, 6])),
        i: i32Tensor([4], new Int32Array([9, 8, 7, 6])),
      },
    );
    expect(out.a!.shape).toEqual([3, 1, 2]);
    expect(values(out.a)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(out.b!.dtype).toBe("i32");
    expect(out.b!.shape).toEqual([2, 2]);
    expect(values(out.b)).toEqual([9, 8, 7, 6]);
  });
});
