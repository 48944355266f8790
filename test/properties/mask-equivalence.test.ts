/**
 * Mask equivalence: block-sparse attention under a pattern given as a token predicate, with
 * padding "masked", equals dense attention whose additive mask is built from the same
 * predicate (0 where a query reads a key, -1e9 elsewhere; global tokens read and are read by
 * all). The predicate is compiled to a ragged layout with full and partial blocks
 * (src/patterns/predicate.ts); the dense side never sees the layout.
 *
 * Dense attention's mask is shared by its heads, so the dense side is one single-head
 * `attention` node per head (q, k, v and the bias table sliced to that head), which lets
 * predicates differ per head. Both sides are in one graph. On the reference backend (float64
 * arithmetic) the two agree to float32 rounding; every other variant of
 * test/support/backends.ts runs the graph and its block-sparse outputs are compared with the
 * reference's dense ones (and so are its own dense outputs, the per-pair mask [B, N, N] of the
 * `attention` op), within the float32 tolerance of duplicated-blocks.test.ts (gpu.js's
 * cpu engine computes in float64 but stores float32 between kernels, so it gets that too).
 *
 * Predicates come from two sources: seeded random predicates (ragged-layouts.ts: random
 * density, bands, cells, empty), and every pattern of the library (src/patterns/library/,
 * at sizes for small clip grids: test/patterns/support.ts), alone and combined with the
 * language's operators and heads(...), over raster or shuffled token orders and at spread
 * layers (fewer local tokens than the grid, as after a drop). A library pattern's dense mask
 * is its predicate asked about every pair; its block-sparse side is what compilePattern
 * made of it (block bounds, full and partial blocks, per-head rows).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runReference } from "../../backends/reference/index.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph, TensorRef } from "../../src/ir/graph.js";
import { isRagged, partialCount } from "../../src/ir/pattern.js";
import { relPosTableRows } from "../../src/ir/relpos.js";
import { type HostTensor, i32Tensor } from "../../src/ir/tensor.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { compilePattern, patternContext } from "../../src/patterns/language.js";
import { parsePattern } from "../../src/patterns/library/index.js";
import { layoutFromPredicate } from "../../src/patterns/predicate.js";
import { SMALL_SPECS } from "../patterns/support.js";
import { maxAbsDiff, permutation, randomTensor, rng } from "../models/support.js";
import { BACKEND_VARIANTS, runOn } from "../support/backends.js";
import {
  PREDICATE_KINDS,
  type PredicateKind,
  randomPredicate,
  type Reads,
} from "./ragged-layouts.js";

/** Float32 backends against the float64 reference (inputs in [-2, 2)). */
const ATOL = 5e-5;
/** Float64 arithmetic on both sides, outputs stored as float32: rounding only. */
const FLOAT64_ATOL = 1e-6;
/** The dense side's additive mask where a pair is not read: exp(-1e9) is 0 in float32 and 64. */
const NOT_READ = -1e9;

type BiasSource = "none" | "inputs" | "static";

/** A library pattern over a clip grid, in raster or a shuffled order, maybe at a spread layer. */
interface LibrarySource {
  readonly spec: string;
  readonly grid: readonly [number, number, number];
  readonly shuffled: boolean;
  /** Random blocks drawn per head (svitt, bigbird). */
  readonly perHeadRandom: boolean;
}

interface Case {
  readonly batch: number;
  readonly heads: number;
  readonly headDim: number;
  readonly globals: number;
  readonly local: number;
  readonly blockSize: number;
  readonly kind: PredicateKind;
  readonly perHead: boolean;
  readonly bias: BiasSource;
  readonly tokenBatch: number;
  readonly seed: number;
  /** When set, the predicate is this library pattern's (kind and perHead then go unused). */
  readonly library?: LibrarySource;
}

/** The case's predicate and the block layout compiled from it. */
function patternOf(c: Case): { reads: Reads; layout: ReturnType<typeof layoutFromPredicate> } {
  if (c.library === undefined) {
    const reads = randomPredicate(c.kind, c.local, c.seed + 6, c.perHead);
    const layout = layoutFromPredicate({
      localTokens: c.local,
      blockSize: c.blockSize,
      heads: c.perHead ? c.heads : 1,
      reads,
      where: "mask-equivalence",
    });
    return { reads, layout };
  }
  const { spec, grid, shuffled, perHeadRandom } = c.library;
  const all = grid[0] * grid[1] * grid[2];
  const context = {
    ...patternContext({
      localTokens: c.local,
      blockSize: c.blockSize,
      heads: c.heads,
      grid,
      order: shuffled ? Int32Array.from(permutation(all, rng(c.seed + 7))) : null,
      seed: c.seed,
      where: "mask-equivalence",
    }),
    perHeadRandom,
  };
  const pattern = parsePattern(spec);
  const layout = compilePattern(pattern, context);
  const predicate = pattern.at(context);
  const tokens = context.tokens.tokens;
  return { reads: (h, q, k) => predicate.reads(tokens[q]!, tokens[k]!, h), layout };
}

interface Built {
  readonly graph: Graph;
  readonly weights: Map<string, HostTensor>;
  readonly inputs: Record<string, HostTensor>;
}

/** The dense mask [B, N, N] of head h: 0 where query i reads key j, NOT_READ elsewhere. */
function denseMask(c: Case, reads: Reads, h: number): HostTensor {
  const n = c.globals + c.local;
  const plane = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const read = i < c.globals || j < c.globals || reads(h, i - c.globals, j - c.globals);
      plane[i * n + j] = read ? 0 : NOT_READ;
    }
  }
  const data = new Float32Array(c.batch * n * n);
  for (let b = 0; b < c.batch; b++) data.set(plane, b * n * n);
  return { dtype: "f32", shape: [c.batch, n, n], data };
}

function build(c: Case): Built {
  const n = c.globals + c.local;
  const width = c.heads * c.headDim;
  const type = { dtype: "f32", shape: [c.batch, n, width] } as const;
  const b = new GraphBuilder("mask-equivalence");
  const inputs: Record<string, HostTensor> = {
    q: randomTensor(type.shape, c.seed + 1, 2),
    k: randomTensor(type.shape, c.seed + 2, 2),
    v: randomTensor(type.shape, c.seed + 3, 2),
  };
  const [q, k, v] = [b.input("q", type), b.input("k", type), b.input("v", type)];
  const weights = new Map<string, HostTensor>();
  let bias: { table: TensorRef; idx: TensorRef; window: [number, number, number] } | null = null;
  if (c.bias !== "none") {
    // A (2, 3, w) window wide enough for the local tokens, at distinct seeded positions.
    const window: [number, number, number] = [2, 3, Math.ceil(c.local / 6) + 1];
    const rows = relPosTableRows(window);
    const next = rng(c.seed + 5);
    const idx = new Int32Array(c.tokenBatch * c.local);
    for (let item = 0; item < c.tokenBatch; item++) {
      idx.set(
        permutation(window[0] * window[1] * window[2], next).slice(0, c.local),
        item * c.local,
      );
    }
    const table = randomTensor([rows, c.heads], c.seed + 4, 1);
    const index = i32Tensor([c.tokenBatch, c.local], idx);
    if (c.bias === "inputs") {
      inputs.table = table;
      inputs.idx = index;
      bias = {
        table: b.input("table", { dtype: "f32", shape: [rows, c.heads] }),
        idx: b.input("idx", { dtype: "i32", shape: [c.tokenBatch, c.local] }),
        window,
      };
    } else {
      weights.set("table", table);
      bias = { table: b.weight("table", [rows, c.heads]), idx: b.constant("idx", index), window };
    }
  }
  const { reads, layout } = patternOf(c);
  const relPosBias = bias === null ? null : { window: bias.window };
  const biasRefs = bias === null ? [] : [bias.table, bias.idx];
  const [context, probs] = b.add("blockSparseAttention", [q, k, v, ...biasRefs], {
    heads: c.heads,
    pattern: {
      globalTokens: c.globals,
      blockSize: c.blockSize,
      layout,
      origin: { kind: "custom", label: c.library?.spec ?? `predicate ${c.kind}` },
    },
    padding: "masked",
    relPosBias,
  });
  b.output("sparse.context", context!);
  b.output("sparse.probs", probs!);
  for (let h = 0; h < c.heads; h++) {
    const channels = { axis: 2, start: h * c.headDim, end: (h + 1) * c.headDim };
    const [qh, kh, vh] = [q, k, v].map((x) => b.add("slice", [x], channels)[0]!);
    inputs[`mask${h}`] = denseMask(c, reads, h);
    const mask = b.input(`mask${h}`, { dtype: "f32", shape: [c.batch, n, n] });
    const headBias =
      bias === null
        ? []
        : [b.add("slice", [bias.table], { axis: 1, start: h, end: h + 1 })[0]!, bias.idx];
    const [dctx, dprobs] = b.add("attention", [qh!, kh!, vh!, mask, ...headBias], {
      heads: 1,
      numCls: c.globals,
      probs: "cls",
      mask: true,
      relPosBias,
    });
    b.output(`dense${h}.context`, dctx!);
    b.output(`dense${h}.probs`, dprobs!);
  }
  return { graph: verifyGraph(b.build()), weights, inputs };
}

/** Largest difference between the block-sparse outputs of `got` and the dense ones of `want`. */
function worstDifference(
  c: Case,
  got: Record<string, HostTensor>,
  want: Record<string, HostTensor>,
): number {
  const n = c.globals + c.local;
  const width = c.heads * c.headDim;
  let worst = 0;
  const note = (a: number, b: number) => {
    const d = Math.abs(a - b);
    worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(worst, d);
  };
  const context = got["sparse.context"]!.data;
  const probs = got["sparse.probs"]!.data;
  for (let h = 0; h < c.heads; h++) {
    const dctx = want[`dense${h}.context`]!.data;
    const dprobs = want[`dense${h}.probs`]!.data;
    for (let b = 0; b < c.batch; b++) {
      for (let i = 0; i < n; i++) {
        for (let t = 0; t < c.headDim; t++) {
          note(
            context[(b * n + i) * width + h * c.headDim + t]!,
            dctx[(b * n + i) * c.headDim + t]!,
          );
        }
      }
      for (let g = 0; g < c.globals; g++) {
        for (let j = 0; j < n; j++) {
          note(
            probs[((b * c.heads + h) * c.globals + g) * n + j]!,
            dprobs[(b * c.globals + g) * n + j]!,
          );
        }
      }
    }
  }
  return worst;
}

const cases: fc.Arbitrary<Case> = fc
  .record({
    batch: fc.integer({ min: 1, max: 2 }),
    heads: fc.integer({ min: 1, max: 3 }),
    headDim: fc.constantFrom(1, 2, 4, 8),
    globals: fc.integer({ min: 1, max: 2 }),
    local: fc.integer({ min: 1, max: 40 }),
    blockSize: fc.integer({ min: 1, max: 12 }),
    kind: fc.constantFrom(...PREDICATE_KINDS),
    perHead: fc.boolean(),
    bias: fc.constantFrom<BiasSource>("none", "inputs", "static"),
    batchedIndex: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1_000_000 }),
  })
  .map(
    (s): Case => ({
      ...s,
      // A relative position bias has exactly one global token, the CLS token.
      globals: s.bias === "none" ? s.globals : 1,
      tokenBatch: s.batchedIndex ? s.batch : 1,
    }),
  );

/** Grids of 2-3 frames of up to 6 x 6 patches: sizes where every SMALL_SPECS pattern fits. */
const GRIDS: readonly (readonly [number, number, number])[] = [
  [3, 6, 4],
  [3, 6, 5],
  [4, 6, 3],
];

/** Every library pattern alone, and combined: union, intersection, difference, heads(...). */
const LIBRARY_SPECS: readonly string[] = [
  ...SMALL_SPECS,
  "window3d:3x3x3 + svitt:local=1,random=1",
  "divided & window:w=9",
  "dense - causal:frames=1",
  "heads(divided; bigbird:global=4,window=1,random=1; window3d:1x3x3)",
];

/** Library cases for one spec: a random geometry over a grid, at layer 0 or a spread layer. */
function libraryCases(spec: string): fc.Arbitrary<Case> {
  return fc
    .record({
      batch: fc.integer({ min: 1, max: 2 }),
      heads: fc.integer({ min: 3, max: 4 }),
      headDim: fc.constantFrom(2, 4, 8),
      globals: fc.integer({ min: 1, max: 2 }),
      grid: fc.constantFrom(...GRIDS),
      kept: fc.constantFrom(1, 1, 0.7),
      blockSize: fc.integer({ min: 3, max: 12 }),
      shuffled: fc.boolean(),
      perHeadRandom: fc.boolean(),
      bias: fc.constantFrom<BiasSource>("none", "inputs", "static"),
      seed: fc.integer({ min: 0, max: 1_000_000 }),
    })
    .map(
      (s): Case => ({
        batch: s.batch,
        heads: s.heads,
        headDim: s.headDim,
        globals: s.bias === "none" ? s.globals : 1,
        local: Math.ceil(s.kept * s.grid[0] * s.grid[1] * s.grid[2]),
        blockSize: s.blockSize,
        kind: "random",
        perHead: false,
        bias: s.bias,
        tokenBatch: 1,
        seed: s.seed,
        library: { spec, grid: s.grid, shuffled: s.shuffled, perHeadRandom: s.perHeadRandom },
      }),
    );
}

describe("block-sparse attention under a library pattern equals masked dense attention", () => {
  it("the library cases have partial blocks and, for heads(...), per-head rows (not vacuous)", () => {
    for (const spec of LIBRARY_SPECS) {
      const samples = fc.sample(libraryCases(spec), { numRuns: 4, seed: 1 });
      for (const c of samples) {
        const { layout } = patternOf(c);
        if (spec.startsWith("heads(")) expect(layout.heads).toBe(c.heads);
        if (spec.startsWith("window3d:3x3x3") || spec === "divided") {
          expect(partialCount(layout)).toBeGreaterThan(0);
        }
      }
    }
  });

  for (const variant of BACKEND_VARIANTS) {
    it(`on ${variant.name}${variant.name === "reference" ? ", in float64" : ""}`, async () => {
      for (const [i, spec] of LIBRARY_SPECS.entries()) {
        const runs = variant.name === "reference" ? 6 : 2;
        for (const c of fc.sample(libraryCases(spec), { numRuns: runs, seed: 17 + i })) {
          const { graph, weights, inputs } = build(c);
          const want = runReference(graph, weights, inputs);
          if (variant.name === "reference") {
            expect(worstDifference(c, want, want), spec).toBeLessThanOrEqual(FLOAT64_ATOL);
            continue;
          }
          const got = await runOn(variant, graph, weights, inputs);
          expect(worstDifference(c, got, want), `${spec} on ${variant.name}`).toBeLessThanOrEqual(
            ATOL,
          );
        }
      }
    });
  }
});

describe("block-sparse attention under a token predicate equals masked dense attention", () => {
  it("the generated layouts are ragged with partial blocks (the property is not vacuous)", () => {
    const samples = fc.sample(cases, { numRuns: 60, seed: 5 });
    const layouts = samples.map(
      (c) => build(c).graph.nodes.find((n) => n.op === "blockSparseAttention")!,
    );
    const ragged = layouts.filter(
      (node) => node.op === "blockSparseAttention" && isRagged(node.attrs.pattern.layout),
    );
    const partial = layouts.filter(
      (node) => node.op === "blockSparseAttention" && partialCount(node.attrs.pattern.layout) > 0,
    );
    expect(ragged.length).toBeGreaterThan(20);
    expect(partial.length).toBeGreaterThan(20);
  });

  it("on the reference backend, in float64", () => {
    fc.assert(
      fc.property(cases, (c) => {
        const { graph, weights, inputs } = build(c);
        const out = runReference(graph, weights, inputs);
        expect(worstDifference(c, out, out)).toBeLessThanOrEqual(FLOAT64_ATOL);
      }),
      { numRuns: 150, seed: 3 },
    );
  });

  it("and the comparison can fail: a predicate other than the mask's is caught", () => {
    const c: Case = {
      batch: 1,
      heads: 2,
      headDim: 4,
      globals: 1,
      local: 20,
      blockSize: 6,
      kind: "band",
      perHead: false,
      bias: "none",
      tokenBatch: 1,
      seed: 9,
    };
    const { graph, weights, inputs } = build(c);
    const other = build({ ...c, kind: "random" });
    // Dense masks of another predicate against this graph's block-sparse side.
    const swapped = { ...inputs, mask0: other.inputs.mask0!, mask1: other.inputs.mask1! };
    const out = runReference(graph, weights, swapped);
    expect(worstDifference(c, out, out)).toBeGreaterThan(1e-2);
  });

  for (const variant of BACKEND_VARIANTS.filter((v) => v.name !== "reference")) {
    it(`on ${variant.name}`, async () => {
      await fc.assert(
        fc.asyncProperty(cases, async (c) => {
          const { graph, weights, inputs } = build(c);
          const want = runReference(graph, weights, inputs);
          const got = await runOn(variant, graph, weights, inputs);
          expect(worstDifference(c, got, want)).toBeLessThanOrEqual(ATOL);
          // The variant's dense attention with a per-pair mask [B, N, N] agrees too.
          for (let h = 0; h < c.heads; h++) {
            for (const part of ["context", "probs"]) {
              const name = `dense${h}.${part}`;
              expect(maxAbsDiff(got[name]!.data, want[name]!.data)).toBeLessThanOrEqual(ATOL);
            }
          }
        }),
        { numRuns: 12, seed: 11 },
      );
    });
  }
});
