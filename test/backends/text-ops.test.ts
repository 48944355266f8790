import { describe, expect, it } from "vitest";
import { runReference } from "../../backends/reference/index.js";
import { nodeCost } from "../../src/cost.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { BackendError, InputError, ShapeError } from "../../src/ir/errors.js";
import type { Graph, TensorRef } from "../../src/ir/graph.js";
import type { DType } from "../../src/ir/dtype.js";
import {
  f32Tensor,
  type HostTensor,
  i32Tensor,
  numElements,
  type TensorType,
} from "../../src/ir/tensor.js";
import { Rng } from "../../src/patterns/random.js";
import { BACKEND_VARIANTS, runOn } from "../support/backends.js";

/**
 * The text-encoder, fusion and retrieval ops (embedding, additiveMask, l2Normalize,
 * similarity, selectBatch, slice) on every backend variant (test/support/backends.ts), each
 * against the reference backend, and the reference kernels against hand computations.
 *
 * Tolerances (u = 2^-24, float32's unit roundoff; the reference rounds once, from float64):
 * - embedding, selectBatch, slice copy values and additiveMask of a 0/1 mask computes
 *   0 · fill or 1 · fill, both exact: every backend must match bit for bit (atol 0).
 * - similarity, a float32 dot product of D terms: |error| ≤ γ_D Σ|a_d b_d| with γ_D ≈ D·u,
 *   plus a rounding each for the scale and the stored result, so
 *   atol = (D + 3) · u · |scale| · max over outputs of Σ_d |a_d b_d| (computed from the data).
 * - l2Normalize: the sum of D squares has relative error ≤ D·u (the square root halves it),
 *   and the square root, max, division and storage add a few roundings each, allowing GPUs
 *   a few ulp for division and square root (GLSL ES 3.0 allows 2.5 and 3); outputs lie in
 *   [-1, 1], so atol = (D + 8) · u.
 */

const U = 2 ** -24;

interface OpCase {
  readonly name: string;
  readonly graph: Graph;
  readonly weights: ReadonlyMap<string, HostTensor>;
  readonly inputs: Readonly<Record<string, HostTensor>>;
  /** Largest |got - want| for f32 outputs (justified in the file comment); i32: exact. */
  readonly atol: number;
}

// ---- data ------------------------------------------------------------------------------------

/** Uniform values in [-1, 1) from a named seeded stream. */
function uniform(shape: readonly number[], label: string): HostTensor & { dtype: "f32" } {
  const rng = Rng.stream(11, label);
  const data = new Float32Array(numElements(shape));
  for (let i = 0; i < data.length; i++) data[i] = 2 * rng.next() - 1;
  return f32Tensor(shape, data);
}

/** Integers in [-50, 50) from a named seeded stream (an i32 payload to move around). */
function integers(shape: readonly number[], label: string): HostTensor & { dtype: "i32" } {
  const rng = Rng.stream(12, label);
  const data = new Int32Array(numElements(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.below(100) - 50;
  return i32Tensor(shape, data);
}

function ids(shape: readonly number[], values: readonly number[]): HostTensor & { dtype: "i32" } {
  return i32Tensor(shape, Int32Array.from(values));
}

function type(dtype: DType, shape: readonly number[]): TensorType {
  return { dtype, shape };
}

/** A one-op graph: `wire` adds the op to the builder's inputs and returns its output. */
function opGraph(
  name: string,
  inputs: Readonly<Record<string, TensorType>>,
  wire: (b: GraphBuilder, refs: Record<string, TensorRef>) => TensorRef,
): Graph {
  const b = new GraphBuilder(name);
  const refs: Record<string, TensorRef> = {};
  for (const [input, t] of Object.entries(inputs)) refs[input] = b.input(input, t);
  b.output("out", wire(b, refs));
  return b.build();
}

// ---- cases -----------------------------------------------------------------------------------

/** embedding of `idValues` [B, L] in a seeded [V, C] table, the table a weight or an input. */
function embeddingCase(
  name: string,
  [rows, width]: [number, number],
  idShape: [number, number],
  idValues: readonly number[],
  tableAs: "weight" | "input",
): OpCase {
  const table = uniform([rows, width], `${name}.table`);
  const b = new GraphBuilder(name);
  const tableRef =
    tableAs === "weight"
      ? b.weight("table", [rows, width])
      : b.input("table", type("f32", [rows, width]));
  const idRef = b.input("ids", type("i32", idShape));
  b.output("out", b.add1("embedding", [tableRef, idRef], {}));
  const idTensor = ids(idShape, idValues);
  return {
    name: `embedding ${name} (table as ${tableAs})`,
    graph: b.build(),
    weights: tableAs === "weight" ? new Map([["table", table]]) : new Map(),
    inputs: tableAs === "weight" ? { ids: idTensor } : { ids: idTensor, table },
    atol: 0,
  };
}

function maskCase(
  name: string,
  shape: [number, number],
  values: readonly number[],
  fill: number,
): OpCase {
  return {
    name: `additiveMask ${name}, fill ${fill}`,
    graph: opGraph(name, { m: type("i32", shape) }, (b, { m }) =>
      b.add1("additiveMask", [m!], { fill }),
    ),
    weights: new Map(),
    inputs: { m: ids(shape, values) },
    atol: 0,
  };
}

/** l2Normalize of seeded data with the rows listed in `override` replaced. */
function normalizeCase(
  name: string,
  shape: readonly number[],
  eps: number,
  override: Readonly<Record<number, readonly number[]>> = {},
): OpCase {
  const x = uniform(shape, `${name}.x`);
  const width = shape.at(-1)!;
  for (const [row, values] of Object.entries(override)) x.data.set(values, Number(row) * width);
  return {
    name: `l2Normalize ${name}`,
    graph: opGraph(name, { x: type("f32", shape) }, (b, refs) =>
      b.add1("l2Normalize", [refs.x!], { eps }),
    ),
    weights: new Map(),
    inputs: { x },
    atol: (width + 8) * U,
  };
}

/** max over (m, n) of Σ_d |a[m, d] b[n, d]|. */
function largestAbsDot(a: HostTensor, b: HostTensor, width: number): number {
  let largest = 0;
  for (let m = 0; m < a.data.length / width; m++) {
    for (let n = 0; n < b.data.length / width; n++) {
      let sum = 0;
      for (let d = 0; d < width; d++)
        sum += Math.abs(a.data[m * width + d]! * b.data[n * width + d]!);
      largest = Math.max(largest, sum);
    }
  }
  return largest;
}

function similarityCase(
  name: string,
  rows: number,
  columns: number,
  width: number,
  scale: number,
): OpCase {
  const a = uniform([rows, width], `${name}.a`);
  const bT = uniform([columns, width], `${name}.b`);
  return {
    name: `similarity ${name}`,
    graph: opGraph(
      name,
      { a: type("f32", [rows, width]), b: type("f32", [columns, width]) },
      (b, refs) => b.add1("similarity", [refs.a!, refs.b!], { scale }),
    ),
    weights: new Map(),
    inputs: { a, b: bT },
    atol: (width + 3) * U * Math.abs(scale) * largestAbsDot(a, bT, width),
  };
}

function selectCase(name: string, x: HostTensor, picks: readonly number[]): OpCase {
  return {
    name: `selectBatch ${name}`,
    graph: opGraph(
      name,
      { x: type(x.dtype, x.shape), idx: type("i32", [picks.length]) },
      (b, refs) => b.add1("selectBatch", [refs.x!, refs.idx!], {}),
    ),
    weights: new Map(),
    inputs: { x, idx: ids([picks.length], picks) },
    atol: 0,
  };
}

/**
 * Index operands fixed at compile time (BERT's position and token-type ids, the retrieval
 * head's pair indices): embedding of constant ids [1, L] in a weight table, and selectBatch
 * of a run-time x by constant indices.
 */
function constantIndexCases(): OpCase[] {
  const table = uniform([6, 5], "const.table");
  const emb = new GraphBuilder("position-ids");
  const positions = emb.constant("position_ids", ids([1, 4], [0, 1, 2, 5]));
  emb.output("out", emb.add1("embedding", [emb.weight("table", [6, 5]), positions], {}));
  const x = uniform([3, 2, 4], "const.x");
  const pick = new GraphBuilder("pairs");
  const pairs = pick.constant("pairs", ids([5], [2, 0, 0, 1, 2]));
  const xRef = pick.input("x", type("f32", [3, 2, 4]));
  pick.output("out", pick.add1("selectBatch", [xRef, pairs], {}));
  return [
    {
      name: "embedding of constant ids in a weight table",
      graph: emb.build(),
      weights: new Map([["table", table]]),
      inputs: {},
      atol: 0,
    },
    {
      name: "selectBatch by constant indices",
      graph: pick.build(),
      weights: new Map(),
      inputs: { x },
      atol: 0,
    },
  ];
}

function sliceCase(x: HostTensor, axis: number, start: number, end: number): OpCase {
  const name = `${x.dtype}[${x.shape.join(",")}] axis ${axis}, ${start}..${end}`;
  return {
    name: `slice ${name}`,
    graph: opGraph("slice", { x: type(x.dtype, x.shape) }, (b, refs) =>
      b.add1("slice", [refs.x!], { axis, start, end }),
    ),
    weights: new Map(),
    inputs: { x },
    atol: 0,
  };
}

/** Every axis of `shape`, sliced in the middle (or the whole axis when it is 1 long) and at each end. */
function sliceCases(x: HostTensor): OpCase[] {
  return x.shape.flatMap((size, axis) => {
    const spans: [number, number][] =
      size === 1
        ? [[0, 1]]
        : [
            [1, size],
            [0, 1],
            [size - 1, size],
            [0, size],
          ];
    if (size > 3) spans.push([1, size - 1]);
    return spans.map(([start, end]) => sliceCase(x, axis, start, end));
  });
}

/**
 * A retrieval head: word embeddings [B, L, C] of the ids, the first token's row sliced out
 * ([B, 1, C] -> [B, C]), L2-normalised, scored against normalised run-time video features
 * [N, C] with scale 1/0.07. Error bound: each normalised entry is off by at most
 * ε = (C + 8)u, so a dot of two unit vectors moves by at most 2ε√C (‖v‖₁ ≤ √C) plus its
 * own rounding (C + 3)u (Σ|a_d b_d| ≤ 1), all times the scale.
 */
function retrievalCase(): OpCase {
  const [batch, length, width, videos, vocab] = [3, 4, 8, 5, 12];
  const scale = 1 / 0.07;
  const b = new GraphBuilder("retrieval");
  const idRef = b.input("ids", type("i32", [batch, length]));
  const video = b.input("video", type("f32", [videos, width]));
  const words = b.add1(
    "embedding",
    [b.weight("word_embeddings.weight", [vocab, width]), idRef],
    {},
  );
  const cls = b.add1("slice", [words], { axis: 1, start: 0, end: 1 });
  const text = b.add1("l2Normalize", [b.add1("reshape", [cls], { shape: [batch, width] })], {
    eps: 1e-12,
  });
  const visual = b.add1("l2Normalize", [video], { eps: 1e-12 });
  b.output("sim", b.add1("similarity", [text, visual], { scale }));
  const epsilon = (width + 8) * U;
  return {
    name: "retrieval head: embedding, slice, reshape, l2Normalize, similarity",
    graph: b.build(),
    weights: new Map([["word_embeddings.weight", uniform([vocab, width], "retrieval.table")]]),
    inputs: {
      ids: ids([batch, length], [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]),
      video: uniform([videos, width], "retrieval.video"),
    },
    atol: scale * (2 * epsilon * Math.sqrt(width) + (width + 3) * U),
  };
}

const CASES: readonly OpCase[] = [
  embeddingCase("repeated ids", [10, 4], [2, 3], [9, 0, 9, 3, 3, 0], "weight"),
  embeddingCase("repeated ids", [10, 4], [2, 3], [9, 0, 9, 3, 3, 0], "input"),
  embeddingCase("B=1, L=1", [5, 3], [1, 1], [4], "weight"),
  embeddingCase("B=1, L=1", [5, 3], [1, 1], [4], "input"),
  embeddingCase("one-row table", [1, 8], [3, 2], [0, 0, 0, 0, 0, 0], "weight"),
  embeddingCase("wide rows", [7, 33], [2, 5], [6, 5, 4, 3, 2, 1, 0, 1, 2, 6], "weight"),
  maskCase("[2,5]", [2, 5], [1, 1, 1, 0, 0, 1, 0, 1, 0, 0], -10000),
  maskCase("[2,5]", [2, 5], [1, 1, 1, 0, 0, 1, 0, 1, 0, 0], -1e9),
  maskCase("B=1, L=1 kept", [1, 1], [1], -1e9),
  maskCase("B=1, L=1 masked", [1, 1], [0], -10000),
  maskCase("all kept", [3, 4], new Array(12).fill(1), -10000),
  maskCase("all masked", [3, 4], new Array(12).fill(0), -1e9),
  normalizeCase("[4,8] with a zero row (eps branch)", [4, 8], 1e-12, { 2: new Array(8).fill(0) }),
  normalizeCase("[2,3,5] with a row below eps", [2, 3, 5], 1e-3, {
    4: [3e-4, -4e-4, 0, 0, 0],
  }),
  normalizeCase("rank 1 [6]", [6], 1e-12),
  normalizeCase("rank 4 [2,2,2,3]", [2, 2, 2, 3], 1e-12, { 5: [0, 0, 0] }),
  normalizeCase("one element per row [5,1]", [5, 1], 1e-12, { 1: [0] }),
  normalizeCase("[3,40] (unrolled sums)", [3, 40], 1e-12),
  similarityCase("[3,8] x [5,8], scale 1/0.07", 3, 5, 8, 1 / 0.07),
  similarityCase("M=N=D=1", 1, 1, 1, 1),
  similarityCase("[4,19] x [2,19], scale -0.5", 4, 2, 19, -0.5),
  selectCase("f32 [4,3,2] unsorted, repeated", uniform([4, 3, 2], "sel.a"), [3, 0, 3, 1, 1]),
  selectCase("i32 [3,4] unsorted, repeated", integers([3, 4], "sel.b"), [2, 2, 0, 1]),
  selectCase("f32 rank 1 [5]", uniform([5], "sel.c"), [4, 0]),
  selectCase("i32 rank 1 [5]", integers([5], "sel.d"), [1, 1, 4]),
  selectCase("f32 rank 4 [3,2,2,3]", uniform([3, 2, 2, 3], "sel.e"), [2, 0, 2]),
  selectCase("i32 rank 5 [2,2,1,2,3]", integers([2, 2, 1, 2, 3], "sel.f"), [1, 0]),
  selectCase("B=1, P=3", uniform([1, 6], "sel.g"), [0, 0, 0]),
  selectCase("P=1", uniform([4, 2, 3], "sel.h"), [2]),
  ...constantIndexCases(),
  ...sliceCases(uniform([2, 5, 4], "slice.a")),
  ...sliceCases(uniform([2, 3, 4, 5], "slice.b")),
  ...sliceCases(integers([3, 1, 4], "slice.c")),
  ...sliceCases(integers([2, 2, 3, 4], "slice.d")),
  sliceCase(uniform([7], "slice.e"), 0, 2, 5),
  sliceCase(uniform([1, 6], "slice.f"), 1, 5, 6),
  retrievalCase(),
];

// ---- comparison ------------------------------------------------------------------------------

function expectMatches(
  name: string,
  got: HostTensor | undefined,
  want: HostTensor,
  atol: number,
): void {
  expect(got, `output ${name}`).toBeDefined();
  expect(got!.dtype, name).toBe(want.dtype);
  expect(got!.shape, name).toEqual(want.shape);
  expect(got!.data.length, name).toBe(want.data.length);
  if (want.dtype === "i32") {
    expect(Array.from(got!.data), name).toEqual(Array.from(want.data));
    return;
  }
  for (let i = 0; i < want.data.length; i++) {
    const error = Math.abs(got!.data[i]! - want.data[i]!);
    if (!(error <= atol)) {
      expect.fail(`${name}[${i}]: got ${got!.data[i]}, want ${want.data[i]} (atol ${atol})`);
    }
  }
}

describe.each(BACKEND_VARIANTS)("text and retrieval ops on $name", (variant) => {
  for (const c of CASES) {
    it(`${c.name} matches the reference`, async () => {
      const want = runReference(c.graph, c.weights, c.inputs);
      const got = await runOn(variant, c.graph, c.weights, c.inputs);
      expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
      for (const [name, tensor] of Object.entries(want))
        expectMatches(name, got[name], tensor, c.atol);
    });
  }

  it("rejects an embedding id outside [0, V) with an InputError naming the input", async () => {
    const graph = opGraph("ids", { ids: type("i32", [2, 3]) }, (b, refs) =>
      b.add1("embedding", [b.weight("table", [10, 4]), refs.ids!], {}),
    );
    const weights = new Map([["table", uniform([10, 4], "oob.table")]]);
    const executable = await variant.create().compile(graph, weights);
    try {
      const high = executable.run({ ids: ids([2, 3], [0, 1, 2, 3, 4, 10]) });
      await expect(high).rejects.toThrow(InputError);
      await expect(high).rejects.toThrow(/input "ids": value 10 at \[1,2\] outside \[0, 10\)/);
      const low = executable.run({ ids: ids([2, 3], [0, -1, 2, 3, 4, 5]) });
      await expect(low).rejects.toThrow(/input "ids": value -1 at \[0,1\] outside \[0, 10\)/);
      // In range, the same executable still runs.
      const ok = await executable.run({ ids: ids([2, 3], [0, 9, 2, 3, 4, 5]) });
      expect(ok.out!.shape).toEqual([2, 3, 4]);
    } finally {
      executable.dispose();
    }
  });

  it("rejects a selectBatch index outside [0, B) with an InputError naming the input", async () => {
    const graph = opGraph("pick", { x: type("f32", [4, 3]), idx: type("i32", [3]) }, (b, refs) =>
      b.add1("selectBatch", [refs.x!, refs.idx!], {}),
    );
    const executable = await variant.create().compile(graph, new Map());
    try {
      const x = uniform([4, 3], "oob.x");
      const high = executable.run({ x, idx: ids([3], [0, 4, 1]) });
      await expect(high).rejects.toThrow(InputError);
      await expect(high).rejects.toThrow(/input "idx": value 4 at \[1\] outside \[0, 4\)/);
      await expect(executable.run({ x, idx: ids([3], [-2, 0, 1]) })).rejects.toThrow(
        /input "idx": value -2 at \[0\] outside \[0, 4\)/,
      );
    } finally {
      executable.dispose();
    }
  });
});

// ---- the reference kernels by hand -----------------------------------------------------------

/** The single output of `graph` on the reference backend. */
function referenceOut(graph: Graph, inputs: Record<string, HostTensor>): HostTensor {
  return runReference(graph, new Map(), inputs).out!;
}

describe("reference kernels against hand computations", () => {
  it("embedding copies table rows, repeated ids included", () => {
    const table = f32Tensor([4, 2], Float32Array.from([0, 1, 10, 11, 20, 21, 30, 31]));
    const graph = opGraph("emb", { table: type("f32", [4, 2]), ids: type("i32", [2, 2]) }, (b, r) =>
      b.add1("embedding", [r.table!, r.ids!], {}),
    );
    const out = referenceOut(graph, { table, ids: ids([2, 2], [3, 0, 3, 2]) });
    expect(out.shape).toEqual([2, 2, 2]);
    expect(Array.from(out.data)).toEqual([30, 31, 0, 1, 30, 31, 20, 21]);
  });

  it("additiveMask is 0 where kept and fill where masked", () => {
    for (const fill of [-10000, -1e9]) {
      const graph = opGraph("mask", { m: type("i32", [2, 3]) }, (b, r) =>
        b.add1("additiveMask", [r.m!], { fill }),
      );
      const out = referenceOut(graph, { m: ids([2, 3], [1, 0, 1, 0, 0, 1]) });
      expect(out.dtype).toBe("f32");
      // (1 - 1) · fill is -0 in IEEE arithmetic; |value| compares it with 0.
      expect(Array.from(out.data, (v) => (v === 0 ? 0 : v))).toEqual([0, fill, 0, fill, fill, 0]);
    }
  });

  it("l2Normalize divides by the norm, or by eps when the norm is smaller", () => {
    const graph = opGraph("norm", { x: type("f32", [3, 2]) }, (b, r) =>
      b.add1("l2Normalize", [r.x!], { eps: 2 }),
    );
    const x = f32Tensor([3, 2], Float32Array.from([3, 4, 0, 0, 0.75, -1]));
    const out = referenceOut(graph, { x });
    // ‖(3, 4)‖ = 5; the zero row stays 0; ‖(0.75, -1)‖ = 1.25 < eps, so it is divided by 2.
    expect(Array.from(out.data)).toEqual([0.6, 0.8, 0, 0, 0.375, -0.5].map(Math.fround));
  });

  it("similarity is scale times the row dot products", () => {
    const graph = opGraph("sim", { a: type("f32", [2, 2]), b: type("f32", [3, 2]) }, (b, r) =>
      b.add1("similarity", [r.a!, r.b!], { scale: 2 }),
    );
    const a = f32Tensor([2, 2], Float32Array.from([1, 2, 0, -1]));
    const bm = f32Tensor([3, 2], Float32Array.from([3, 4, 1, 0, 0.5, 0.5]));
    const out = referenceOut(graph, { a, b: bm });
    // row 0: 2·(1·3 + 2·4), 2·(1·1 + 0), 2·(0.5 + 1); row 1: 2·(-4), 2·0, 2·(-0.5).
    expect(out.shape).toEqual([2, 3]);
    expect(Array.from(out.data, (v) => (v === 0 ? 0 : v))).toEqual([22, 2, 3, -8, 0, -1]);
  });

  it("selectBatch picks batch items in index order, f32 and i32", () => {
    const graph = (dtype: DType) =>
      opGraph("pick", { x: type(dtype, [3, 2]), idx: type("i32", [4]) }, (b, r) =>
        b.add1("selectBatch", [r.x!, r.idx!], {}),
      );
    const idx = ids([4], [2, 0, 2, 1]);
    const f = referenceOut(graph("f32"), {
      x: f32Tensor([3, 2], Float32Array.from([1, 2, 3, 4, 5, 6])),
      idx,
    });
    expect(f.shape).toEqual([4, 2]);
    expect(Array.from(f.data)).toEqual([5, 6, 1, 2, 5, 6, 3, 4]);
    const i = referenceOut(graph("i32"), { x: ids([3, 2], [-1, -2, -3, -4, -5, -6]), idx });
    expect(i.dtype).toBe("i32");
    expect(Array.from(i.data)).toEqual([-5, -6, -1, -2, -5, -6, -3, -4]);
  });

  it("slice keeps entries start..end-1 on its axis", () => {
    // x[a, b, c] = 100a + 10b + c for a < 2, b < 3, c < 4.
    const values = [];
    for (let a = 0; a < 2; a++)
      for (let b = 0; b < 3; b++) for (let c = 0; c < 4; c++) values.push(100 * a + 10 * b + c);
    const x = ids([2, 3, 4], values);
    const run = (axis: number, start: number, end: number) =>
      referenceOut(
        opGraph("slice", { x: type("i32", [2, 3, 4]) }, (b, r) =>
          b.add1("slice", [r.x!], { axis, start, end }),
        ),
        { x },
      );
    expect(Array.from(run(0, 1, 2).data)).toEqual([
      100, 101, 102, 103, 110, 111, 112, 113, 120, 121, 122, 123,
    ]);
    expect(Array.from(run(1, 1, 3).data)).toEqual([
      10, 11, 12, 13, 20, 21, 22, 23, 110, 111, 112, 113, 120, 121, 122, 123,
    ]);
    const last = run(2, 2, 4);
    expect(last.shape).toEqual([2, 3, 2]);
    expect(Array.from(last.data)).toEqual([2, 3, 12, 13, 22, 23, 102, 103, 112, 113, 122, 123]);
  });

  it("an out-of-range id from a constant is a BackendError naming the node", () => {
    const b = new GraphBuilder("const-ids");
    const table = b.input("table", type("f32", [3, 2]));
    const constIds = b.constant("position_ids", ids([1, 2], [1, 3]));
    b.output("out", b.add1("embedding", [table, constIds], {}, { name: "bert.embeddings" }));
    expect(() => runReference(b.build(), new Map(), { table: uniform([3, 2], "c.table") })).toThrow(
      new BackendError('reference: %2 embedding "bert.embeddings": id 3 at [0,1] outside [0, 3)'),
    );
  });
});

// ---- run-time index checks -------------------------------------------------------------------

describe("index inputs are range-checked before any backend runs", () => {
  it("uses the tightest range when one input feeds several index operands", () => {
    const b = new GraphBuilder("shared-ids");
    const idRef = b.input("ids", type("i32", [1, 2]));
    const x = b.input("x", type("f32", [6, 2]));
    b.output("a", b.add1("embedding", [b.weight("big", [10, 2]), idRef], {}));
    b.output("b", b.add1("embedding", [x, idRef], {}, { name: "small" }));
    const graph = b.build();
    const weights = new Map([["big", uniform([10, 2], "shared.big")]]);
    const inputs = { x: uniform([6, 2], "shared.x") };
    expect(() => runReference(graph, weights, { ...inputs, ids: ids([1, 2], [5, 7]) })).toThrow(
      'input "ids": value 7 at [0,1] outside [0, 6) (indices of %4 embedding "small": rows of its table)',
    );
    expect(runReference(graph, weights, { ...inputs, ids: ids([1, 2], [5, 0]) }).b!.shape).toEqual([
      1, 2, 2,
    ]);
  });

  it("leaves i32 inputs that are not read as indices alone", () => {
    const graph = opGraph("mask", { m: type("i32", [1, 3]) }, (b, r) =>
      b.add1("additiveMask", [r.m!], { fill: -10000 }),
    );
    const out = referenceOut(graph, { m: ids([1, 3], [2, -1, 1]) });
    // (1 - 2) · -10000, (1 + 1) · -10000, 0.
    expect(Array.from(out.data, (v) => (v === 0 ? 0 : v))).toEqual([10000, -20000, 0]);
  });
});

// ---- cost rules ------------------------------------------------------------------------------

describe("cost rules", () => {
  it("count M·N·D linear MACs for similarity and none for look-ups, masks and copies", () => {
    const b = new GraphBuilder("costs");
    const idRef = b.input("ids", type("i32", [2, 3]));
    const words = b.add1("embedding", [b.weight("table", [10, 4]), idRef], {});
    const first = b.add1("slice", [words], { axis: 1, start: 0, end: 1 });
    const text = b.add1("l2Normalize", [b.add1("reshape", [first], { shape: [2, 4] })], {
      eps: 1e-12,
    });
    const video = b.input("video", type("f32", [5, 4]));
    b.output("sim", b.add1("similarity", [text, video], { scale: 2 }));
    b.output("mask", b.add1("additiveMask", [idRef], { fill: -10000 }));
    b.output("pick", b.add1("selectBatch", [video, b.constant("idx", ids([3], [4, 0, 4]))], {}));
    const graph = b.build();
    const costs = Object.fromEntries(graph.nodes.map((n) => [n.op, nodeCost(graph, n)]));
    expect(costs.similarity).toEqual({ kind: "linear", macs: 2 * 5 * 4, bytes: 4 * (8 + 20 + 10) });
    for (const op of ["embedding", "slice", "l2Normalize", "additiveMask", "selectBatch"]) {
      expect(costs[op]!.macs, op).toBe(0);
    }
    // Bytes: every tensor read plus every tensor written, 4 bytes an element.
    expect(costs.embedding!.bytes).toBe(4 * (40 + 6 + 24));
    expect(costs.selectBatch!.bytes).toBe(4 * (20 + 3 + 12));
  });
});

// ---- shape rules -----------------------------------------------------------------------------

describe("shape rules reject bad operands at build time", () => {
  const build =
    (
      inputs: Readonly<Record<string, TensorType>>,
      wire: (b: GraphBuilder, refs: Record<string, TensorRef>) => TensorRef,
    ) =>
    () =>
      opGraph("bad", inputs, wire);
  const cases: [string, () => Graph, RegExp][] = [
    [
      "embedding with an i32 table",
      build({ t: type("i32", [4, 2]), i: type("i32", [1, 2]) }, (b, r) =>
        b.add1("embedding", [r.t!, r.i!], {}),
      ),
      /embedding table must be f32 of rank 2, got i32\[4,2\]/,
    ],
    [
      "embedding with f32 ids",
      build({ t: type("f32", [4, 2]), i: type("f32", [1, 2]) }, (b, r) =>
        b.add1("embedding", [r.t!, r.i!], {}),
      ),
      /embedding ids must be i32 of rank 2, got f32\[1,2\]/,
    ],
    [
      "embedding with rank-1 ids",
      build({ t: type("f32", [4, 2]), i: type("i32", [3]) }, (b, r) =>
        b.add1("embedding", [r.t!, r.i!], {}),
      ),
      /embedding ids must be i32 of rank 2, got i32\[3\]/,
    ],
    [
      "additiveMask of an f32 mask",
      build({ m: type("f32", [2, 3]) }, (b, r) => b.add1("additiveMask", [r.m!], { fill: -10000 })),
      /additiveMask token mask must be i32 of rank 2, got f32\[2,3\]/,
    ],
    [
      "additiveMask with an infinite fill",
      build({ m: type("i32", [2, 3]) }, (b, r) =>
        b.add1("additiveMask", [r.m!], { fill: Number.NEGATIVE_INFINITY }),
      ),
      /additiveMask fill must be a finite number, got -Infinity/,
    ],
    [
      "l2Normalize of i32",
      build({ x: type("i32", [2, 3]) }, (b, r) => b.add1("l2Normalize", [r.x!], { eps: 1e-12 })),
      /l2Normalize input must be f32, got i32\[2,3\]/,
    ],
    [
      "l2Normalize of a scalar",
      build({ x: type("f32", []) }, (b, r) => b.add1("l2Normalize", [r.x!], { eps: 1e-12 })),
      /l2Normalize input must have rank >= 1, got f32\[\]/,
    ],
    [
      "l2Normalize with eps 0",
      build({ x: type("f32", [2, 3]) }, (b, r) => b.add1("l2Normalize", [r.x!], { eps: 0 })),
      /l2Normalize eps must be a finite number > 0, got 0/,
    ],
    [
      "similarity of different widths",
      build({ a: type("f32", [2, 3]), b: type("f32", [4, 5]) }, (b, r) =>
        b.add1("similarity", [r.a!, r.b!], { scale: 1 }),
      ),
      /similarity rhs width is 5, expected 3/,
    ],
    [
      "similarity of a rank-3 lhs",
      build({ a: type("f32", [1, 2, 3]), b: type("f32", [4, 3]) }, (b, r) =>
        b.add1("similarity", [r.a!, r.b!], { scale: 1 }),
      ),
      /similarity lhs must be f32 of rank 2, got f32\[1,2,3\]/,
    ],
    [
      "similarity with a NaN scale",
      build({ a: type("f32", [2, 3]), b: type("f32", [4, 3]) }, (b, r) =>
        b.add1("similarity", [r.a!, r.b!], { scale: Number.NaN }),
      ),
      /similarity scale must be a finite number, got NaN/,
    ],
    [
      "selectBatch with rank-2 indices",
      build({ x: type("f32", [4, 3]), i: type("i32", [1, 2]) }, (b, r) =>
        b.add1("selectBatch", [r.x!, r.i!], {}),
      ),
      /selectBatch indices must be i32 of rank 1, got i32\[1,2\]/,
    ],
    [
      "selectBatch with f32 indices",
      build({ x: type("f32", [4, 3]), i: type("f32", [2]) }, (b, r) =>
        b.add1("selectBatch", [r.x!, r.i!], {}),
      ),
      /selectBatch indices must be i32 of rank 1, got f32\[2\]/,
    ],
    [
      "selectBatch of a scalar",
      build({ x: type("f32", []), i: type("i32", [2]) }, (b, r) =>
        b.add1("selectBatch", [r.x!, r.i!], {}),
      ),
      /selectBatch input must have rank >= 1, got f32\[\]/,
    ],
    [
      "slice on an axis past the rank",
      build({ x: type("f32", [2, 3]) }, (b, r) =>
        b.add1("slice", [r.x!], { axis: 2, start: 0, end: 1 }),
      ),
      /slice axis 2 outside \[0, 1\] for f32\[2,3\]/,
    ],
    [
      "slice on a negative axis",
      build({ x: type("f32", [2, 3]) }, (b, r) =>
        b.add1("slice", [r.x!], { axis: -1, start: 0, end: 1 }),
      ),
      /slice axis -1 outside \[0, 1\]/,
    ],
    [
      "slice with start = end",
      build({ x: type("f32", [2, 3]) }, (b, r) =>
        b.add1("slice", [r.x!], { axis: 1, start: 2, end: 2 }),
      ),
      /slice 2\.\.2 on axis 1 \(size 3\) needs integers 0 <= start < end <= 3/,
    ],
    [
      "slice past the end",
      build({ x: type("i32", [2, 3]) }, (b, r) =>
        b.add1("slice", [r.x!], { axis: 0, start: 1, end: 3 }),
      ),
      /slice 1\.\.3 on axis 0 \(size 2\) needs integers 0 <= start < end <= 2/,
    ],
    [
      "slice from a negative start",
      build({ x: type("f32", [2, 3]) }, (b, r) =>
        b.add1("slice", [r.x!], { axis: 1, start: -1, end: 2 }),
      ),
      /slice -1\.\.2 on axis 1/,
    ],
    [
      "slice at a fractional start",
      build({ x: type("f32", [2, 3]) }, (b, r) =>
        b.add1("slice", [r.x!], { axis: 1, start: 0.5, end: 2 }),
      ),
      /slice 0\.5\.\.2 on axis 1/,
    ],
  ];
  for (const [what, make, message] of cases) {
    it(what, () => {
      expect(make).toThrow(ShapeError);
      expect(make).toThrow(message);
    });
  }
});
