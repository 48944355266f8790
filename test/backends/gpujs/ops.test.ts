import { describe, expect, it } from "vitest";
import { runReference } from "../../../backends/reference/index.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { TensorRef } from "../../../src/ir/graph.js";
import type { AttentionPattern, PaddingMode } from "../../../src/ir/pattern.js";
import { relPosTableRows } from "../../../src/ir/relpos.js";
import { f32Tensor, type HostTensor, i32Tensor } from "../../../src/ir/tensor.js";
import { customLayout } from "../../../src/patterns/layouts.js";
import { expectParity, MODES, runGpujs, toleranceFor } from "./helpers.js";

/**
 * Every op kind's generated kernels against the reference kernels, on shapes that exercise
 * the index arithmetic: broadcasting across ranks 1-4, merged leading axes, reshapes between
 * different device views, gathers on every axis with batch broadcasting, top-k ties and
 * NaN, dense attention with mask and bias, block-sparse attention with padding, two global
 * tokens and per-head layouts.
 */

/** Deterministic values in [-scale, scale) (mulberry32). */
function random(shape: readonly number[], seed: number, scale = 1): HostTensor & { dtype: "f32" } {
  let state = seed >>> 0;
  const t = f32Tensor(shape);
  for (let i = 0; i < t.data.length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    t.data[i] = ((((x ^ (x >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return t;
}

interface OpCase {
  readonly name: string;
  /** Builds the graph; returns weights and inputs. */
  readonly build: (b: GraphBuilder) => {
    weights?: Record<string, HostTensor>;
    inputs: Record<string, HostTensor>;
  };
}

const f32In = (b: GraphBuilder, name: string, shape: readonly number[]): TensorRef =>
  b.input(name, { dtype: "f32", shape });

const CASES: OpCase[] = [
  {
    name: "linear with and without bias, rank 2 and 4",
    build: (b) => {
      const x = f32In(b, "x", [3, 5]);
      const y = f32In(b, "y", [2, 3, 2, 5]);
      const w = b.weight("w", [4, 5]);
      b.output("a", b.add1("linear", [x, w, b.weight("bias", [4])], {}));
      b.output("b", b.add1("linear", [y, w], {}));
      return {
        weights: { w: random([4, 5], 1), bias: random([4], 2) },
        inputs: { x: random([3, 5], 3), y: random([2, 3, 2, 5], 4) },
      };
    },
  },
  {
    name: "add and mul broadcast across ranks 1-4",
    build: (b) => {
      const a = f32In(b, "a", [2, 1, 3, 4]);
      const c = f32In(b, "c", [3, 1]);
      const d = f32In(b, "d", [4]);
      const e = f32In(b, "e", [2, 3, 1]);
      b.output("sum", b.add1("add", [a, c], {}));
      b.output("prod", b.add1("mul", [d, e], {}));
      b.output("same", b.add1("mul", [a, a], {}));
      return {
        inputs: {
          a: random([2, 1, 3, 4], 5),
          c: random([3, 1], 6),
          d: random([4], 7),
          e: random([2, 3, 1], 8),
        },
      };
    },
  },
  {
    name: "gelu over [-12, 12] and layerNorm on ranks 2 and 3",
    build: (b) => {
      const x = f32In(b, "x", [4, 50]);
      b.output("g", b.add1("gelu", [x], {}));
      const h = f32In(b, "h", [2, 3, 8]);
      b.output(
        "n",
        b.add1("layerNorm", [h, b.weight("gamma", [8]), b.weight("beta", [8])], { eps: 1e-5 }),
      );
      b.output(
        "n2",
        b.add1("layerNorm", [x, b.weight("gamma2", [50]), b.weight("beta2", [50])], {
          eps: 1e-12,
        }),
      );
      const grid = f32Tensor([4, 50]);
      for (let i = 0; i < 200; i++) grid.data[i] = -12 + (24 * i) / 199;
      return {
        weights: {
          gamma: random([8], 9),
          beta: random([8], 10),
          gamma2: random([50], 11),
          beta2: random([50], 12),
        },
        inputs: { x: grid, h: random([2, 3, 8], 13, 3) },
      };
    },
  },
  {
    name: "reshape between different views, and as an alias",
    build: (b) => {
      const x = f32In(b, "x", [2, 1, 1, 6]);
      b.output("flat", b.add1("reshape", [x], { shape: [2, 6] }));
      b.output("back", b.add1("reshape", [f32In(b, "y", [3, 4])], { shape: [2, 1, 6] }));
      b.output("alias", b.add1("reshape", [f32In(b, "z", [1, 3, 4])], { shape: [3, 4] }));
      return {
        inputs: { x: random([2, 1, 1, 6], 14), y: random([3, 4], 15), z: random([1, 3, 4], 16) },
      };
    },
  },
  {
    name: "patchEmbed, prependTokens with a batch-1 prefix, meanTokens",
    build: (b) => {
      const pixels = f32In(b, "pixels", [2, 2, 3, 8, 12]);
      const tokens = b.add1(
        "patchEmbed",
        [pixels, b.weight("pw", [5, 3, 4, 4]), b.weight("pb", [5])],
        { patchSize: 4 },
      );
      const seq = b.add1("prependTokens", [b.weight("cls", [1, 1, 5]), tokens], {});
      b.output("seq", seq);
      b.output("mean", b.add1("meanTokens", [seq], { skip: 1 }));
      return {
        weights: { pw: random([5, 3, 4, 4], 17), pb: random([5], 18), cls: random([1, 1, 5], 19) },
        inputs: { pixels: random([2, 2, 3, 8, 12], 20) },
      };
    },
  },
  {
    name: "tokenScores, topK with ties and NaN, gather on axes 1-3 with batch broadcasting",
    build: (b) => {
      const probs = f32In(b, "probs", [2, 3, 2, 9]);
      const scores = b.add1("tokenScores", [probs], { row: 1, skip: 1 });
      const keep = b.add1("topK", [scores], { k: 5 });
      b.output("keep", keep);
      const raw = f32In(b, "raw", [2, 7]);
      b.output("rawKeep", b.add1("topK", [raw], { k: 4 }));
      const x = f32In(b, "x", [2, 9, 3]);
      b.output("tokens", b.add1("gather", [x, keep], { axis: 1, keepPrefix: 1 }));
      const shared = f32In(b, "shared", [1, 4, 11]);
      b.output("shared", b.add1("gather", [shared, keep], { axis: 2, keepPrefix: 3 }));
      const mask = f32In(b, "mask", [2, 1, 1, 9]);
      b.output("mask", b.add1("gather", [mask, keep], { axis: 3, keepPrefix: 1 }));
      const idx = b.constant("idx", i32Tensor([1, 8], Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7])));
      b.output("idx", b.add1("gather", [idx, keep], { axis: 1, keepPrefix: 0 }));
      const tied = f32Tensor(
        [2, 7],
        Float32Array.from([0.5, 0.7, Number.NaN, 0.5, 0.7, 0.1, 0.5, 3, 3, 3, 1, 3, 2, 3]),
      );
      return {
        inputs: {
          probs: random([2, 3, 2, 9], 21),
          raw: tied,
          x: random([2, 9, 3], 22),
          shared: random([1, 4, 11], 23),
          mask: random([2, 1, 1, 9], 24),
        },
      };
    },
  },
  {
    name: "dense attention with mask, all probabilities",
    build: (b) => {
      const q = f32In(b, "q", [2, 5, 8]);
      const k = f32In(b, "k", [2, 6, 8]);
      const v = f32In(b, "v", [2, 6, 8]);
      const mask = f32In(b, "mask", [2, 6]);
      const [context, probs] = b.add("attention", [q, k, v, mask], {
        heads: 2,
        numCls: 0,
        probs: "all",
        mask: true,
        relPosBias: null,
      });
      b.output("context", context!);
      b.output("probs", probs!);
      const m = f32Tensor(
        [2, 6],
        Float32Array.from([0, 0, -10000, 0, 0, 0, 0, 0, 0, 0, -10000, -10000]),
      );
      return {
        inputs: {
          q: random([2, 5, 8], 25),
          k: random([2, 6, 8], 26),
          v: random([2, 6, 8], 27),
          mask: m,
        },
      };
    },
  },
  {
    name: "dense attention with relative position bias from a per-sample token index",
    build: (b) => {
      const window = [2, 2, 3] as const;
      const q = f32In(b, "q", [2, 6, 8]);
      const k = f32In(b, "k", [2, 6, 8]);
      const v = f32In(b, "v", [2, 6, 8]);
      const idx = b.input("idx", { dtype: "i32", shape: [2, 5] });
      const table = b.weight("table", [relPosTableRows(window), 2]);
      const [context, probs] = b.add("attention", [q, k, v, table, idx], {
        heads: 2,
        numCls: 1,
        probs: "cls",
        mask: false,
        relPosBias: { window },
      });
      b.output("context", context!);
      b.output("probs", probs!);
      return {
        weights: { table: random([relPosTableRows(window), 2], 28) },
        inputs: {
          q: random([2, 6, 8], 29),
          k: random([2, 6, 8], 30),
          v: random([2, 6, 8], 31),
          idx: i32Tensor([2, 5], Int32Array.from([0, 3, 5, 7, 11, 10, 2, 6, 1, 9])),
        },
      };
    },
  },
  {
    // Taller than an 8192 texture as a plain 2-D view (like the 8-frame relative-position
    // table, [10938, 12]), so stored four floats per texel: packed in, packed out, and a
    // packed input read by a kernel with a plain output.
    name: "values too tall for a plain texture (packed layout)",
    build: (b) => {
      const t = b.weight("tall", [9001, 3]);
      const sum = b.add1("add", [t, f32In(b, "x", [9001, 3])], {});
      b.output("sum", sum);
      b.output("projected", b.add1("linear", [sum, b.weight("w", [2, 3])], {}));
      b.output("flat", b.add1("reshape", [sum], { shape: [27003] }));
      return {
        weights: { tall: random([9001, 3], 41), w: random([2, 3], 42) },
        inputs: { x: random([9001, 3], 43) },
      };
    },
  },
];

/** Block-sparse attention over 1 + 13 tokens (blocks of 4: the last has 3 padded slots). */
function blockSparseCase(padding: PaddingMode, perHead: boolean, relPos: boolean): OpCase {
  return {
    name: `blockSparseAttention, padding ${padding}, ${perHead ? "per-head" : "shared"} layout, ${relPos ? "relative position bias" : "no bias"}`,
    build: (b) => {
      const window = [1, 3, 5] as const;
      const heads = 2;
      const global = relPos ? 1 : 2;
      const n = global + 13;
      const rows = perHead
        ? [
            [
              [0, 2],
              [1, 3],
              [2, 0],
              [3, 1],
            ],
            [
              [0, 3],
              [1, 2],
              [2, 1],
              [3, 0],
            ],
          ]
        : [
            [0, 3],
            [1, 2],
            [2, 3],
            [3, 0],
          ];
      const pattern: AttentionPattern = {
        globalTokens: global,
        blockSize: 4,
        layout: customLayout(rows, perHead ? heads : 1),
        origin: { kind: "custom", label: "test" },
      };
      const q = f32In(b, "q", [2, n, 8]);
      const k = f32In(b, "k", [2, n, 8]);
      const v = f32In(b, "v", [2, n, 8]);
      const args = [q, k, v];
      const weights: Record<string, HostTensor> = {};
      const inputs: Record<string, HostTensor> = {
        q: random([2, n, 8], 32, 2),
        k: random([2, n, 8], 33, 2),
        v: random([2, n, 8], 34),
      };
      if (relPos) {
        args.push(b.weight("table", [relPosTableRows(window), heads]));
        args.push(b.input("idx", { dtype: "i32", shape: [1, 13] }));
        weights.table = random([relPosTableRows(window), heads], 35);
        inputs.idx = i32Tensor(
          [1, 13],
          Int32Array.from([14, 0, 2, 1, 5, 7, 3, 9, 8, 12, 11, 4, 6]),
        );
      }
      const [context, probs] = b.add("blockSparseAttention", args, {
        heads,
        pattern,
        padding,
        relPosBias: relPos ? { window } : null,
      });
      b.output("context", context!);
      b.output("probs", probs!);
      return { weights, inputs };
    },
  };
}

for (const padding of ["reference", "masked"] as const) {
  CASES.push(blockSparseCase(padding, true, true));
  CASES.push(blockSparseCase(padding, false, false));
}

function graphOf(opCase: OpCase) {
  const b = new GraphBuilder(opCase.name.replace(/\W+/g, "_"));
  const { weights = {}, inputs } = opCase.build(b);
  return { graph: b.build(), weights: new Map(Object.entries(weights)), inputs };
}

describe.each(MODES)("gpujs %s mode, op by op against the reference", (mode) => {
  for (const opCase of CASES) {
    it(opCase.name, async () => {
      const { graph, weights, inputs } = graphOf(opCase);
      await expectParity(graph, weights, inputs, mode, toleranceFor(mode));
    });
  }
});

describe("host-side index checks", () => {
  it("rejects a token index outside the bias window before running", async () => {
    const { graph, weights, inputs } = graphOf(CASES[7]!);
    const bad = i32Tensor([2, 5], Int32Array.from([0, 3, 5, 7, 12, 10, 2, 6, 1, 9]));
    expect(() => runReference(graph, weights, { ...inputs, idx: bad })).toThrow(/outside/);
    await expect(runGpujs(graph, weights, { ...inputs, idx: bad }, "cpu")).rejects.toThrow(
      /input "idx": value 12 at 4 outside \[0, 12\)/,
    );
  });
});
