/**
 * sprig's C block-sparse attention kernel, as the N-API addon and as WebAssembly, against
 * the reference kernel on seeded random problems: random layouts (per head or shared),
 * including rows that read a block twice (padding "reference", the reference's
 * duplicated-block softmax; such rows may be wider than M), both padding modes, with and
 * without a 3-D relative position bias, several global tokens, batch 1-2, head widths on and
 * off the kernel's vector width; and ragged layouts (rows of 0 to 6 blocks in any order) with
 * partial blocks (random token masks, block sizes past 32 so that masks span two words),
 * which the kernel runs as they are, never densified.
 *
 * The kernels are built at install time (backends/native/build.ts). Where they are not
 * built the tests skip, unless SPRIG_REQUIRE_NATIVE=1 (CI), which turns that into a failure.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NATIVE_DIR } from "../../../backends/native/paths.js";
import { bsaCall } from "../../../backends/native/args.js";
import { nativeBlockSparseAttention, nativeStatus } from "../../../backends/native/index.js";
import { WasmBlockSparseAttention } from "../../../backends/native/wasm.js";
import { blockSparseAttention as referenceKernel } from "../../../backends/reference/kernels/attention.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { Node, TensorRef } from "../../../src/ir/graph.js";
import { type BlockLayout, type PaddingMode, partialCount } from "../../../src/ir/pattern.js";
import { relPosTableRows } from "../../../src/ir/relpos.js";
import { type HostTensor, i32Tensor } from "../../../src/ir/tensor.js";
import { window3dLayout } from "../../../src/patterns/window3d.js";
import { maxAbsDiff, permutation, randomTensor, rng } from "../../models/support.js";
import { randomRaggedLayout } from "../../properties/ragged-layouts.js";

const REQUIRED = process.env.SPRIG_REQUIRE_NATIVE === "1";
const WASM_PATH = join(NATIVE_DIR, "sprig_bsa.wasm");
const wasmBytes = (() => {
  try {
    return readFileSync(WASM_PATH);
  } catch {
    return null;
  }
})();

/** Float32 kernels against the float64 reference: chosen before the first run. */
const ATOL = 2e-5;

interface Case {
  readonly batch: number;
  readonly heads: number;
  readonly headDim: number;
  readonly globals: number;
  readonly local: number;
  readonly blockSize: number;
  readonly width: number;
  readonly relPos: boolean;
  readonly tokenBatch: number;
  readonly perHead: boolean;
  readonly padding: PaddingMode;
  /** Rows drawn with replacement (some block read twice); implies padding "reference". */
  readonly repeats: boolean;
  /** A ragged layout with partial blocks (randomRaggedLayout) instead of a fixed one. */
  readonly ragged: boolean;
  readonly seed: number;
}

/** Rows of `width` distinct blocks out of `blocks`, seeded. */
function randomLayout(blocks: number, width: number, heads: number, seed: number): BlockLayout {
  const next = rng(seed);
  const data: number[] = [];
  for (let r = 0; r < heads * blocks; r++) {
    data.push(...permutation(blocks, next).slice(0, width));
  }
  return { heads, queryBlocks: blocks, blocksPerRow: width, blocks: Int32Array.from(data) };
}

/**
 * Rows of `width` blocks drawn with replacement, seeded; the last entry of each head's row 0
 * repeats its first, so every such layout reads some block twice.
 */
function repeatingLayout(blocks: number, width: number, heads: number, seed: number): BlockLayout {
  const next = rng(seed);
  const data = Int32Array.from({ length: heads * blocks * width }, () =>
    Math.floor(next() * blocks),
  );
  for (let h = 0; h < heads; h++) data[(h * blocks + 1) * width - 1] = data[h * blocks * width]!;
  return { heads, queryBlocks: blocks, blocksPerRow: width, blocks: data };
}

function problem(c: Case): { node: Node<"blockSparseAttention">; inputs: HostTensor[] } {
  const n = c.globals + c.local;
  const width = c.heads * c.headDim;
  const blocks = Math.ceil(c.local / c.blockSize);
  const type = { dtype: "f32", shape: [c.batch, n, width] } as const;
  const b = new GraphBuilder("kernel");
  const refs: TensorRef[] = [b.input("q", type), b.input("k", type), b.input("v", type)];
  const inputs: HostTensor[] = [1, 2, 3].map((s) => randomTensor(type.shape, c.seed + s, 2));
  let relPosBias: { window: [number, number, number] } | null = null;
  if (c.relPos) {
    // A (2, 3, w) window wide enough for the local tokens, at distinct seeded positions.
    const window: [number, number, number] = [2, 3, Math.ceil(c.local / 6) + 1];
    const cells = window[0] * window[1] * window[2];
    const rows = relPosTableRows(window);
    const next = rng(c.seed + 5);
    const idx = new Int32Array(c.tokenBatch * c.local);
    for (let item = 0; item < c.tokenBatch; item++) {
      idx.set(permutation(cells, next).slice(0, c.local), item * c.local);
    }
    inputs.push(
      randomTensor([rows, c.heads], c.seed + 4, 1),
      i32Tensor([c.tokenBatch, c.local], idx),
    );
    refs.push(
      b.input("table", { dtype: "f32", shape: [rows, c.heads] }),
      b.input("idx", { dtype: "i32", shape: [c.tokenBatch, c.local] }),
    );
    relPosBias = { window };
  }
  const [context] = b.add("blockSparseAttention", refs, {
    heads: c.heads,
    pattern: {
      globalTokens: c.globals,
      blockSize: c.blockSize,
      layout: c.ragged
        ? randomRaggedLayout({
            blocks,
            blockSize: c.blockSize,
            local: c.local,
            layoutHeads: c.perHead ? c.heads : 1,
            maxWidth: c.width + 2,
            repeats: c.repeats,
            seed: c.seed + 6,
          }).layout
        : c.repeats
          ? repeatingLayout(blocks, c.width + 1, c.perHead ? c.heads : 1, c.seed + 6)
          : randomLayout(blocks, Math.min(c.width, blocks), c.perHead ? c.heads : 1, c.seed + 6),
      origin: { kind: "custom", label: "random" },
    },
    padding: c.padding,
    relPosBias,
  });
  const node = b.build().nodes[context!.node] as Node<"blockSparseAttention">;
  return { node, inputs };
}

const cases = fc
  .record({
    batch: fc.integer({ min: 1, max: 2 }),
    heads: fc.constantFrom(1, 2, 3),
    headDim: fc.constantFrom(1, 3, 5, 8, 12, 16, 20, 32),
    globals: fc.integer({ min: 1, max: 2 }),
    local: fc.integer({ min: 1, max: 40 }),
    blockSize: fc.integer({ min: 1, max: 12 }),
    width: fc.integer({ min: 1, max: 4 }),
    relPos: fc.boolean(),
    batchedIndex: fc.boolean(),
    perHead: fc.boolean(),
    padding: fc.constantFrom<PaddingMode>("reference", "masked"),
    repeats: fc.boolean(),
    ragged: fc.constant(false),
    seed: fc.integer({ min: 0, max: 1_000_000 }),
  })
  .map(
    (s): Case => ({
      ...s,
      // A relative position bias has exactly one global token, the CLS token.
      globals: s.relPos ? 1 : s.globals,
      tokenBatch: s.batchedIndex ? s.batch : 1,
      // Only padding "reference" admits a repeated block (verifier rule 4).
      padding: s.repeats ? "reference" : s.padding,
    }),
  );

/** Ragged layouts with partial blocks; block sizes up to 40 (two mask words per row). */
const raggedCases = fc
  .record({
    batch: fc.integer({ min: 1, max: 2 }),
    heads: fc.constantFrom(1, 2, 3),
    headDim: fc.constantFrom(1, 3, 8, 16, 20),
    globals: fc.integer({ min: 1, max: 2 }),
    local: fc.integer({ min: 1, max: 90 }),
    blockSize: fc.integer({ min: 1, max: 40 }),
    width: fc.integer({ min: 0, max: 4 }),
    relPos: fc.boolean(),
    batchedIndex: fc.boolean(),
    perHead: fc.boolean(),
    padding: fc.constantFrom<PaddingMode>("reference", "masked"),
    repeats: fc.boolean(),
    ragged: fc.constant(true),
    seed: fc.integer({ min: 0, max: 1_000_000 }),
  })
  .map(
    (s): Case => ({
      ...s,
      globals: s.relPos ? 1 : s.globals,
      tokenBatch: s.batchedIndex ? s.batch : 1,
      padding: s.repeats ? "reference" : s.padding,
    }),
  );

type Run = (node: Node<"blockSparseAttention">, inputs: HostTensor[]) => HostTensor[];

function expectMatchesReference(run: Run, arbitrary: fc.Arbitrary<Case> = cases): void {
  fc.assert(
    fc.property(arbitrary, (c) => {
      const { node, inputs } = problem(c);
      const want = referenceKernel(node, inputs);
      const got = run(node, inputs);
      expect(got[0]!.shape).toEqual(want[0]!.shape);
      expect(got[1]!.shape).toEqual(want[1]!.shape);
      expect(maxAbsDiff(got[0]!.data, want[0]!.data)).toBeLessThanOrEqual(ATOL);
      expect(maxAbsDiff(got[1]!.data, want[1]!.data)).toBeLessThanOrEqual(ATOL);
    }),
    { numRuns: 150, seed: 7 },
  );
}

/** The 8-frame SViTT layer's shape class: 64-wide heads, block 56, 4 blocks per row. */
const SVITT_LIKE: Case = {
  batch: 1,
  heads: 2,
  headDim: 64,
  globals: 1,
  local: 300,
  blockSize: 56,
  width: 4,
  relPos: true,
  tokenBatch: 1,
  perHead: false,
  padding: "reference",
  repeats: false,
  ragged: false,
  seed: 11,
};

describe("native block-sparse attention kernel (N-API addon)", () => {
  const status = nativeStatus();
  it("is built here (or the tests below are skipped)", () => {
    if (REQUIRED) expect(status).toEqual({ ok: true, path: expect.any(String) });
  });

  describe.runIf(status.ok)("against the reference kernel", () => {
    for (const threads of [1, 2, 3]) {
      it(`matches on random problems, ${threads} thread${threads === 1 ? "" : "s"}`, () => {
        expectMatchesReference((node, inputs) => nativeBlockSparseAttention(node, inputs, threads));
      });
    }

    for (const threads of [1, 3]) {
      it(`matches on ragged layouts with partial blocks, ${threads} thread${threads === 1 ? "" : "s"}`, () => {
        expectMatchesReference(
          (node, inputs) => nativeBlockSparseAttention(node, inputs, threads),
          raggedCases,
        );
      });
    }

    it("matches on a ragged layout at SViTT's block shape (64-wide heads, block 56)", () => {
      const { node, inputs } = problem({ ...SVITT_LIKE, local: 400, width: 5, ragged: true });
      expect(node.attrs.pattern.layout.entryMask?.some((k) => k >= 0)).toBe(true);
      const want = referenceKernel(node, inputs);
      const got = nativeBlockSparseAttention(node, inputs, 2);
      expect(maxAbsDiff(got[0]!.data, want[0]!.data)).toBeLessThanOrEqual(ATOL);
      expect(maxAbsDiff(got[1]!.data, want[1]!.data)).toBeLessThanOrEqual(ATOL);
    });

    it("matches at SViTT's block shape (64-wide heads, block 56)", () => {
      const { node, inputs } = problem(SVITT_LIKE);
      const want = referenceKernel(node, inputs);
      const got = nativeBlockSparseAttention(node, inputs, 2);
      expect(maxAbsDiff(got[0]!.data, want[0]!.data)).toBeLessThanOrEqual(ATOL);
      expect(maxAbsDiff(got[1]!.data, want[1]!.data)).toBeLessThanOrEqual(ATOL);
    });

    it("matches on the 2-frame SViTT preset's last layers (136 tokens, M = 3, 4-wide rows with repeats)", () => {
      const { node, inputs } = problem({ ...SVITT_LIKE, local: 136, width: 3, repeats: true });
      expect(node.attrs.pattern.layout.blocksPerRow).toBe(4);
      const want = referenceKernel(node, inputs);
      const got = nativeBlockSparseAttention(node, inputs, 2);
      expect(maxAbsDiff(got[0]!.data, want[0]!.data)).toBeLessThanOrEqual(ATOL);
      expect(maxAbsDiff(got[1]!.data, want[1]!.data)).toBeLessThanOrEqual(ATOL);
    });

    it("names the node when a token index lies outside the bias window", () => {
      const { node, inputs } = problem({ ...SVITT_LIKE, local: 20 });
      const bad = inputs[4]!;
      const data = Int32Array.from(bad.data);
      data[3] = 10_000;
      const broken: HostTensor[] = [...inputs.slice(0, 4), i32Tensor([...bad.shape], data)];
      expect(() => nativeBlockSparseAttention(node, broken, 2)).toThrow(
        /native: %\d+ blockSparseAttention.*token index 10000 \(batch 0, position 3\) outside the \d+-token window/,
      );
    });

    it("rejects inputs of the wrong size before touching memory", () => {
      const { node, inputs } = problem({ ...SVITT_LIKE, local: 20 });
      const short: HostTensor = {
        dtype: "f32",
        shape: inputs[0]!.shape,
        data: Float32Array.from(inputs[0]!.data).subarray(1),
      };
      expect(() => nativeBlockSparseAttention(node, [short, ...inputs.slice(1)], 1)).toThrow(
        /q is not f32 with \d+ elements/,
      );
    });
  });
});

describe("the kernel's arguments", () => {
  it("carry a 3-D window's ragged rows and partial blocks as they are (nothing densified)", () => {
    // 4 frames of 14 x 14 tokens, a 3 x 7 x 7 window in blocks of 56.
    const layout = window3dLayout({ grid: [4, 14, 14], kernel: [3, 7, 7] }, 56, 784, "test");
    const b = new GraphBuilder("window");
    const type = { dtype: "f32", shape: [1, 785, 8] } as const;
    const refs = [b.input("q", type), b.input("k", type), b.input("v", type)];
    const [context] = b.add("blockSparseAttention", refs, {
      heads: 2,
      pattern: { globalTokens: 1, blockSize: 56, layout, origin: { kind: "custom", label: "w" } },
      padding: "masked",
      relPosBias: null,
    });
    const node = b.build().nodes[context!.node] as Node<"blockSparseAttention">;
    const inputs = [1, 2, 3].map((seed) => randomTensor([1, 785, 8], seed, 1));
    const call = bsaCall(node, inputs, "test");
    expect(call.keyBlock.length).toBe(layout.blocks.length);
    expect(call.keyBlock.length).toBeLessThan(call.blocks * call.blocks);
    expect(call.maxWidth).toBeLessThan(call.blocks);
    expect(Array.from(call.rowStart)).toEqual(Array.from(layout.rowStart!));
    expect(call.maskCount).toBeGreaterThan(0);
    expect(call.entryMask.filter((k) => k >= 0).length).toBe(partialCount(layout));
  });
});

describe("WebAssembly block-sparse attention kernel", () => {
  it("is built here (or the tests below are skipped)", () => {
    if (REQUIRED) expect(wasmBytes, `${WASM_PATH} missing`).not.toBeNull();
  });

  describe.runIf(wasmBytes !== null)("against the reference kernel", () => {
    it("matches on random problems, reusing one instance (its memory grows as needed)", async () => {
      const kernel = await WasmBlockSparseAttention.instantiate(wasmBytes!);
      expectMatchesReference((node, inputs) => kernel.run(node, inputs));
      expectMatchesReference((node, inputs) => kernel.run(node, inputs), raggedCases);
      const { node, inputs } = problem(SVITT_LIKE);
      const want = referenceKernel(node, inputs);
      const got = kernel.run(node, inputs);
      expect(maxAbsDiff(got[0]!.data, want[0]!.data)).toBeLessThanOrEqual(ATOL);
    });
  });
});
