/**
 * Ragged layouts with partial blocks, built entry by entry (rows of 0 to 5 blocks in any
 * order, repeats under padding "reference", random token masks; ragged-layouts.ts), run on
 * every backend variant of test/support/backends.ts like on the reference backend, which
 * states the op's semantics (its duplicated-block softmax and zero-padded keys included;
 * mask-equivalence.test.ts checks the reference itself against dense attention).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runReference } from "../../backends/reference/index.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph, TensorRef } from "../../src/ir/graph.js";
import type { PaddingMode } from "../../src/ir/pattern.js";
import { relPosTableRows } from "../../src/ir/relpos.js";
import { type HostTensor, i32Tensor } from "../../src/ir/tensor.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { maxAbsDiff, permutation, randomTensor, rng } from "../models/support.js";
import { BACKEND_VARIANTS, runOn } from "../support/backends.js";
import { randomRaggedLayout } from "./ragged-layouts.js";

/** Float32 backends against the float64 reference (inputs in [-2, 2)). */
const ATOL = 5e-5;

type BiasSource = "none" | "inputs" | "static";

interface Case {
  readonly batch: number;
  readonly heads: number;
  readonly headDim: number;
  readonly globals: number;
  readonly local: number;
  readonly blockSize: number;
  readonly maxWidth: number;
  readonly perHead: boolean;
  readonly padding: PaddingMode;
  readonly repeats: boolean;
  readonly bias: BiasSource;
  readonly seed: number;
}

function build(c: Case): {
  graph: Graph;
  weights: Map<string, HostTensor>;
  inputs: Record<string, HostTensor>;
} {
  const n = c.globals + c.local;
  const type = { dtype: "f32", shape: [c.batch, n, c.heads * c.headDim] } as const;
  const b = new GraphBuilder("ragged");
  const refs: TensorRef[] = [b.input("q", type), b.input("k", type), b.input("v", type)];
  const inputs: Record<string, HostTensor> = {
    q: randomTensor(type.shape, c.seed + 1, 2),
    k: randomTensor(type.shape, c.seed + 2, 2),
    v: randomTensor(type.shape, c.seed + 3, 2),
  };
  const weights = new Map<string, HostTensor>();
  let window: [number, number, number] | null = null;
  if (c.bias !== "none") {
    window = [2, 3, Math.ceil(c.local / 6) + 1];
    const rows = relPosTableRows(window);
    const next = rng(c.seed + 5);
    const idx = i32Tensor(
      [1, c.local],
      Int32Array.from(permutation(window[0] * window[1] * window[2], next).slice(0, c.local)),
    );
    const table = randomTensor([rows, c.heads], c.seed + 4, 1);
    if (c.bias === "inputs") {
      refs.push(
        b.input("table", { dtype: "f32", shape: [rows, c.heads] }),
        b.input("idx", { dtype: "i32", shape: [1, c.local] }),
      );
      inputs.table = table;
      inputs.idx = idx;
    } else {
      refs.push(b.weight("table", [rows, c.heads]), b.constant("idx", idx));
      weights.set("table", table);
    }
  }
  const { layout } = randomRaggedLayout({
    blocks: Math.ceil(c.local / c.blockSize),
    blockSize: c.blockSize,
    local: c.local,
    layoutHeads: c.perHead ? c.heads : 1,
    maxWidth: c.maxWidth,
    repeats: c.repeats,
    seed: c.seed + 6,
  });
  const [context, probs] = b.add("blockSparseAttention", refs, {
    heads: c.heads,
    pattern: {
      globalTokens: c.globals,
      blockSize: c.blockSize,
      layout,
      origin: { kind: "custom", label: "random ragged" },
    },
    padding: c.padding,
    relPosBias: window === null ? null : { window },
  });
  b.output("context", context!);
  b.output("probs", probs!);
  return { graph: verifyGraph(b.build()), weights, inputs };
}

const cases: fc.Arbitrary<Case> = fc
  .record({
    batch: fc.integer({ min: 1, max: 2 }),
    heads: fc.integer({ min: 1, max: 3 }),
    headDim: fc.constantFrom(1, 2, 4, 8),
    globals: fc.integer({ min: 1, max: 2 }),
    local: fc.integer({ min: 1, max: 40 }),
    blockSize: fc.integer({ min: 1, max: 12 }),
    maxWidth: fc.integer({ min: 0, max: 5 }),
    perHead: fc.boolean(),
    padding: fc.constantFrom<PaddingMode>("reference", "masked"),
    repeats: fc.boolean(),
    bias: fc.constantFrom<BiasSource>("none", "inputs", "static"),
    seed: fc.integer({ min: 0, max: 1_000_000 }),
  })
  .map(
    (s): Case => ({
      ...s,
      // A relative position bias has exactly one global token; repeats need padding "reference".
      globals: s.bias === "none" ? s.globals : 1,
      padding: s.repeats ? "reference" : s.padding,
    }),
  );

describe("random ragged layouts with partial blocks run alike on every backend", () => {
  for (const variant of BACKEND_VARIANTS.filter((v) => v.name !== "reference")) {
    it(`on ${variant.name}`, async () => {
      await fc.assert(
        fc.asyncProperty(cases, async (c) => {
          const { graph, weights, inputs } = build(c);
          const want = runReference(graph, weights, inputs);
          const got = await runOn(variant, graph, weights, inputs);
          expect(maxAbsDiff(got.context!.data, want.context!.data)).toBeLessThanOrEqual(ATOL);
          expect(maxAbsDiff(got.probs!.data, want.probs!.data)).toBeLessThanOrEqual(ATOL);
        }),
        { numRuns: 12, seed: 13 },
      );
    });
  }
});
