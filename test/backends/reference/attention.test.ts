import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { relPosIndex } from "../../../src/ir/relpos.js";
import { readSafetensors } from "../../../src/io/safetensors.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { TensorRef } from "../../../src/ir/graph.js";
import type { BlockLayout, PaddingMode } from "../../../src/ir/pattern.js";
import { f32Tensor, type HostTensor, i32Tensor } from "../../../src/ir/tensor.js";
import { customLayout, denseLayout } from "../../../src/patterns/layouts.js";
import { expectClose, maxAbsDiff, randomTensor, rng, run, values } from "./helpers.js";

type Window = [number, number, number];

const conformance = (name: string) =>
  fileURLToPath(new URL(`../../../../shared/conformance/${name}.safetensors`, import.meta.url));

/**
 * The full (N+1) x (N+1) bias-index matrix over position ids, built the way the authors'
 * module builds its buffer: coordinates of every window token, pairwise differences,
 * shifted to be non-negative and flattened; then the CLS row and column.
 */
function indexMatrix(window: Window): number[][] {
  const [tw, hw, ww] = window;
  const coords: [number, number, number][] = [];
  for (let t = 0; t < tw; t++)
    for (let h = 0; h < hw; h++) for (let w = 0; w < ww; w++) coords.push([t, h, w]);
  const pairs = (2 * tw - 1) * (2 * hw - 1) * (2 * ww - 1);
  const n = coords.length + 1;
  const m: number[][] = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 1; i < n; i++) {
    for (let j = 1; j < n; j++) {
      const [ta, ha, wa] = coords[i - 1]!;
      const [tc, hc, wc] = coords[j - 1]!;
      const rt = ta - tc + tw - 1;
      const rh = ha - hc + hw - 1;
      const rw = wa - wc + ww - 1;
      m[i]![j] = rt * (2 * hw - 1) * (2 * ww - 1) + rh * (2 * ww - 1) + rw;
    }
  }
  for (let j = 1; j < n; j++) m[0]![j] = pairs;
  for (let i = 1; i < n; i++) m[i]![0] = pairs + 1;
  m[0]![0] = pairs + 2;
  return m;
}

describe("relative position index", () => {
  const cases: [string, Window][] = [
    ["a1_selfattn_dense_rpb", [2, 4, 4]],
    ["b2_selfattn_sparse_rpb_pad", [3, 4, 4]],
    ["b5_selfattn_sparse_rpb_7x7_pad", [2, 7, 7]],
  ];
  for (const [name, window] of cases) {
    it(`matches the authors' relative_position_index buffer for window ${window.join("x")} (${name})`, async () => {
      const file = await readSafetensors(conformance(name));
      const buffer = file.tensors.get("relative_position_bias.relative_position_index");
      expect(buffer).toBeDefined();
      const n = window[0] * window[1] * window[2] + 1;
      expect(buffer!.shape).toEqual([n, n]);
      const matrix = indexMatrix(window);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          const want = buffer!.data[i * n + j]!;
          if (relPosIndex(window, i, j) !== want) {
            expect.fail(
              `relPosIndex(${i}, ${j}) = ${relPosIndex(window, i, j)}, buffer has ${want}`,
            );
          }
          // The test's own builder agrees too, so the naive attentions below can use it.
          expect(matrix[i]![j]).toBe(want);
        }
      }
    });
  }
});

// ---- a naive attention, written independently of the kernels -------------------------------

interface Qkv {
  readonly q: HostTensor;
  readonly k: HostTensor;
  readonly v: HostTensor;
}

/** x[b, i, h*d + t] as a plain array of head-h rows. */
function headRows(x: HostTensor, b: number, h: number, d: number): number[][] {
  const [, n, c] = x.shape as [number, number, number];
  const rows: number[][] = [];
  for (let i = 0; i < n; i++)
    rows.push(Array.from(x.data.subarray((b * n + i) * c + h * d, (b * n + i) * c + h * d + d)));
  return rows;
}

const dotProduct = (a: number[], b: number[]) => a.reduce((s, x, t) => s + x * b[t]!, 0);

function softmaxRow(logits: number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - max));
  const sum = e.reduce((s, x) => s + x, 0);
  return e.map((x) => x / sum);
}

/** Position ids: CLS 0, then tokenIdx + 1 (row b, or row 0 when the index has batch 1). */
function ids(tokenIdx: HostTensor, b: number): number[] {
  const [ib, len] = tokenIdx.shape as [number, number];
  const row = ib === 1 ? 0 : b;
  return [0, ...Array.from(tokenIdx.data.subarray(row * len, row * len + len), (x) => x + 1)];
}

interface Bias {
  readonly window: Window;
  readonly table: HostTensor;
  readonly tokenIdx: HostTensor;
}

/** Dense attention by the textbook formula; returns context [B,Nq,C] and probs [B][H][Nq][Nk]. */
function naiveDense(
  { q, k, v }: Qkv,
  heads: number,
  mask: HostTensor | null,
  bias: Bias | null,
): { context: number[]; probs: number[][][][] } {
  const [batch, nq, c] = q.shape as [number, number, number];
  const nk = k.shape[1]!;
  const d = c / heads;
  const context = new Array<number>(batch * nq * c).fill(0);
  const probs: number[][][][] = [];
  for (let b = 0; b < batch; b++) {
    const perHead: number[][][] = [];
    const index = bias === null ? null : indexMatrix(bias.window);
    const pid = bias === null ? [] : ids(bias.tokenIdx, b);
    for (let h = 0; h < heads; h++) {
      const qs = headRows(q, b, h, d);
      const ks = headRows(k, b, h, d);
      const vs = headRows(v, b, h, d);
      const rows: number[][] = [];
      for (let i = 0; i < nq; i++) {
        const logits = ks.map((kj, j) => {
          let x = dotProduct(qs[i]!, kj) / Math.sqrt(d);
          if (bias !== null && index !== null)
            x += bias.table.data[index[pid[i]!]![pid[j]!]! * heads + h]!;
          if (mask !== null) x += mask.data[b * nk + j]!;
          return x;
        });
        const p = softmaxRow(logits);
        rows.push(p);
        for (let t = 0; t < d; t++) {
          context[(b * nq + i) * c + h * d + t] = p.reduce((s, pj, j) => s + pj * vs[j]![t]!, 0);
        }
      }
      perHead.push(rows);
    }
    probs.push(perHead);
  }
  return { context, probs };
}

/**
 * Block-sparse attention the way the authors' code computes it: local q, k, v zero-padded
 * to M*bs rows (padded token indices set to the CLS index 0), local query block m against
 * [global keys, then the listed key blocks]; in "masked" mode padded keys get -inf. Global
 * rows come from naiveDense.
 */
function naiveSparse(
  qkv: Qkv,
  heads: number,
  globalTokens: number,
  blockSize: number,
  layoutRows: (h: number, m: number) => number[],
  padding: PaddingMode,
  bias: Bias | null,
): { context: number[]; probs: number[][][][] } {
  const { q, k, v } = qkv;
  const [batch, n, c] = q.shape as [number, number, number];
  const d = c / heads;
  const g = globalTokens;
  const local = n - g;
  const blocks = Math.ceil(local / blockSize);
  const padded = blocks * blockSize;
  const dense = naiveDense(qkv, heads, null, bias);
  const context = [...dense.context];
  const index = bias === null ? null : indexMatrix(bias.window);
  for (let b = 0; b < batch; b++) {
    const pid = bias === null ? [] : ids(bias.tokenIdx, b);
    const localPid = Array.from({ length: padded }, (_, r) => (r < local ? pid[g + r]! : 0));
    for (let h = 0; h < heads; h++) {
      const zero = new Array<number>(d).fill(0);
      const pad = (rows: number[][]) =>
        Array.from({ length: padded }, (_, r) => (r < local ? rows[g + r]! : zero));
      const qs = headRows(q, b, h, d);
      const ks = headRows(k, b, h, d);
      const vs = headRows(v, b, h, d);
      const [ql, kl, vl] = [pad(qs), pad(ks), pad(vs)];
      for (let m = 0; m < blocks; m++) {
        const keyRows: { k: number[]; v: number[]; pid: number; isPad: boolean }[] = [];
        for (let s = 0; s < g; s++)
          keyRows.push({ k: ks[s]!, v: vs[s]!, pid: bias === null ? 0 : pid[s]!, isPad: false });
        for (const kb of layoutRows(h, m)) {
          for (let t = 0; t < blockSize; t++) {
            const r = kb * blockSize + t;
            keyRows.push({ k: kl[r]!, v: vl[r]!, pid: localPid[r]!, isPad: r >= local });
          }
        }
        for (let t = 0; t < blockSize; t++) {
          const r = m * blockSize + t;
          if (r >= local) continue; // padded query rows are discarded
          const logits = keyRows.map((key) => {
            if (key.isPad && padding === "masked") return Number.NEGATIVE_INFINITY;
            let x = dotProduct(ql[r]!, key.k) / Math.sqrt(d);
            if (bias !== null && index !== null)
              x += bias.table.data[index[localPid[r]!]![key.pid]! * heads + h]!;
            return x;
          });
          const p = softmaxRow(logits);
          for (let e = 0; e < d; e++) {
            context[(b * n + g + r) * c + h * d + e] = p.reduce(
              (s, pj, j) => s + pj * keyRows[j]!.v[e]!,
              0,
            );
          }
        }
      }
    }
  }
  return { context, probs: dense.probs };
}

/** probs[b][h][0..rows) flattened to [B, H, rows, N]. */
function flattenProbs(probs: number[][][][], rows: number): number[] {
  return probs.flatMap((perHead) => perHead.flatMap((r) => r.slice(0, rows).flat()));
}

// ---- graphs ----------------------------------------------------------------------------------

function qkvInputs(
  b: GraphBuilder,
  q: HostTensor,
  k: HostTensor,
): [TensorRef, TensorRef, TensorRef] {
  return [
    b.input("q", { dtype: "f32", shape: q.shape }),
    b.input("k", { dtype: "f32", shape: k.shape }),
    b.input("v", { dtype: "f32", shape: k.shape }),
  ];
}

function runDense(
  { q, k, v }: Qkv,
  heads: number,
  opts: { numCls: number; probs: "cls" | "all"; mask: HostTensor | null; bias: Bias | null },
): { context: HostTensor; probs: HostTensor } {
  const b = new GraphBuilder("dense");
  const refs = qkvInputs(b, q, k);
  const inputs: Record<string, HostTensor> = { q, k, v };
  const weights: Record<string, HostTensor> = {};
  if (opts.mask !== null) {
    refs.push(b.input("mask", { dtype: "f32", shape: opts.mask.shape }));
    inputs.mask = opts.mask;
  }
  if (opts.bias !== null) {
    refs.push(
      b.weight("table", opts.bias.table.shape),
      b.input("idx", { dtype: "i32", shape: opts.bias.tokenIdx.shape }),
    );
    weights.table = opts.bias.table;
    inputs.idx = opts.bias.tokenIdx;
  }
  const [context, probs] = b.add("attention", refs, {
    heads,
    numCls: opts.numCls,
    probs: opts.probs,
    mask: opts.mask !== null,
    relPosBias: opts.bias === null ? null : { window: opts.bias.window },
  });
  b.output("context", context!);
  b.output("probs", probs!);
  const out = run(b.build(), weights, inputs);
  return { context: out.context!, probs: out.probs! };
}

function runSparse(
  { q, k, v }: Qkv,
  heads: number,
  globalTokens: number,
  blockSize: number,
  layout: BlockLayout,
  padding: PaddingMode,
  bias: Bias | null,
): { context: HostTensor; probs: HostTensor } {
  const b = new GraphBuilder("sparse");
  const refs = qkvInputs(b, q, k);
  const inputs: Record<string, HostTensor> = { q, k, v };
  const weights: Record<string, HostTensor> = {};
  if (bias !== null) {
    refs.push(
      b.weight("table", bias.table.shape),
      b.input("idx", { dtype: "i32", shape: bias.tokenIdx.shape }),
    );
    weights.table = bias.table;
    inputs.idx = bias.tokenIdx;
  }
  const [context, probs] = b.add("blockSparseAttention", refs, {
    heads,
    pattern: { globalTokens, blockSize, layout, origin: { kind: "custom", label: "test" } },
    padding,
    relPosBias: bias === null ? null : { window: bias.window },
  });
  b.output("context", context!);
  b.output("probs", probs!);
  const out = run(b.build(), weights, inputs);
  return { context: out.context!, probs: out.probs! };
}

function randomQkv(batch: number, n: number, c: number, seed: number, nk = n): Qkv {
  return {
    q: randomTensor([batch, n, c], seed, 1.5),
    k: randomTensor([batch, nk, c], seed + 1, 1.5),
    v: randomTensor([batch, nk, c], seed + 2),
  };
}

/** A random permutation of 0..size-1 truncated to `count` entries, per batch row. */
function tokenIndex(rows: number, count: number, size: number, seed: number): HostTensor {
  const next = rng(seed);
  const data = new Int32Array(rows * count);
  for (let r = 0; r < rows; r++) {
    const perm = Array.from({ length: size }, (_, i) => i);
    for (let i = size - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    data.set(perm.slice(0, count), r * count);
  }
  return i32Tensor([rows, count], data);
}

function relPosTable(window: Window, heads: number, seed: number): HostTensor {
  const rows = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1) + 3;
  return randomTensor([rows, heads], seed, 1);
}

// ---- dense attention ---------------------------------------------------------------------------

describe("attention (dense)", () => {
  it("matches the naive per-head formula, all probability rows", () => {
    const qkv = randomQkv(2, 5, 6, 100);
    const got = runDense(qkv, 3, { numCls: 0, probs: "all", mask: null, bias: null });
    const want = naiveDense(qkv, 3, null, null);
    expect(got.context.shape).toEqual([2, 5, 6]);
    expect(got.probs.shape).toEqual([2, 3, 5, 5]);
    expectClose(values(got.context), want.context, 1e-6);
    expectClose(values(got.probs), flattenProbs(want.probs, 5), 1e-7);
  });

  it("adds the mask and returns the CLS rows (cross-attention shapes)", () => {
    const qkv = randomQkv(2, 4, 8, 110, 7);
    const mask = f32Tensor(
      [2, 7],
      new Float32Array([0, 0, -10000, 0, 0, 0, -10000, 0, -1.5, 0, 0, 0, 0, 0]),
    );
    const got = runDense(qkv, 2, { numCls: 2, probs: "cls", mask, bias: null });
    const want = naiveDense(qkv, 2, mask, null);
    expect(got.probs.shape).toEqual([2, 2, 2, 7]);
    expectClose(values(got.context), want.context, 1e-6);
    expectClose(values(got.probs), flattenProbs(want.probs, 2), 1e-7);
    // Masked keys get (almost) nothing.
    expect(got.probs.data[2]).toBeLessThan(1e-30);
  });

  for (const indexBatch of [1, 2]) {
    it(`adds the 3-D relative position bias (token index batch ${indexBatch}, with mask)`, () => {
      const window: Window = [2, 3, 3];
      const heads = 2;
      const local = 12; // of the 18 window positions, in shuffled order
      const qkv = randomQkv(2, local + 1, 8, 120 + indexBatch);
      const bias: Bias = {
        window,
        table: relPosTable(window, heads, 130),
        tokenIdx: tokenIndex(indexBatch, local, 18, 131),
      };
      const mask = f32Tensor([2, local + 1]);
      mask.data[5] = -3;
      const got = runDense(qkv, heads, { numCls: 1, probs: "cls", mask, bias });
      const want = naiveDense(qkv, heads, mask, bias);
      expectClose(values(got.context), want.context, 1e-6);
      expectClose(values(got.probs), flattenProbs(want.probs, 1), 1e-7);
      // The bias matters: without it the result is clearly different.
      const plain = naiveDense(qkv, heads, mask, null);
      expect(maxAbsDiff(values(got.context), plain.context)).toBeGreaterThan(1e-2);
    });
  }

  it("rejects a token index outside the window with a RangeError naming the node", () => {
    const window: Window = [1, 2, 2];
    const qkv = randomQkv(1, 3, 4, 140);
    const bias: Bias = {
      window,
      table: relPosTable(window, 1, 141),
      tokenIdx: i32Tensor([1, 2], new Int32Array([0, 4])),
    };
    expect(() => runDense(qkv, 1, { numCls: 1, probs: "cls", mask: null, bias })).toThrow(
      /%\d+ attention.*token index 4/,
    );
  });
});

// ---- block-sparse attention -----------------------------------------------------------------------

describe("blockSparseAttention", () => {
  const window: Window = [2, 3, 3];
  const heads = 2;
  const c = 8;

  /** B = 2, G = 1, `local` local tokens from the 18-position window, with bias. */
  function setup(local: number, seed: number): { qkv: Qkv; bias: Bias } {
    return {
      qkv: randomQkv(2, local + 1, c, seed),
      bias: {
        window,
        table: relPosTable(window, heads, seed + 10),
        tokenIdx: tokenIndex(2, local, 18, seed + 11),
      },
    };
  }

  it("(1) equals dense attention when every row lists every block and L divides evenly", () => {
    for (const blockSize of [3, 6, 18]) {
      const { qkv, bias } = setup(18, 200 + blockSize);
      const layout = denseLayout(18, blockSize);
      for (const padding of ["reference", "masked"] as const) {
        const sparse = runSparse(qkv, heads, 1, blockSize, layout, padding, bias);
        const dense = runDense(qkv, heads, { numCls: 1, probs: "cls", mask: null, bias });
        expectClose(values(sparse.context), values(dense.context), 1e-6);
        expectClose(values(sparse.probs), values(dense.probs), 1e-7);
      }
    }
  });

  it("(1b) equals dense attention without bias, with several global tokens and shuffled full rows", () => {
    const qkv = randomQkv(2, 3 + 12, c, 210);
    // 3 global tokens, 12 local in 4 blocks of 3; every row lists all blocks, in varied order.
    const layout = customLayout(
      [
        [3, 1, 0, 2],
        [0, 1, 2, 3],
        [2, 3, 1, 0],
        [1, 0, 3, 2],
      ],
      heads,
    );
    const sparse = runSparse(qkv, heads, 3, 3, layout, "reference", null);
    const dense = runDense(qkv, heads, { numCls: 3, probs: "cls", mask: null, bias: null });
    expect(sparse.probs.shape).toEqual([2, heads, 3, 15]);
    expectClose(values(sparse.context), values(dense.context), 1e-6);
    expectClose(values(sparse.probs), values(dense.probs), 1e-7);
  });

  it("(2) in masked mode with padding and a full layout equals dense attention", () => {
    for (const blockSize of [5, 7]) {
      const { qkv, bias } = setup(16, 220 + blockSize); // 16 = 3*5 + 1 = 2*7 + 2: padded
      const layout = denseLayout(16, blockSize);
      for (const withBias of [true, false]) {
        const b = withBias ? bias : null;
        const sparse = runSparse(qkv, heads, 1, blockSize, layout, "masked", b);
        const dense = runDense(qkv, heads, { numCls: 1, probs: "cls", mask: null, bias: b });
        expectClose(values(sparse.context), values(dense.context), 1e-6);
        expectClose(values(sparse.probs), values(dense.probs), 1e-7);
      }
    }
  });

  it("(3) in reference mode padded keys absorb mass: differs from dense, matches the authors' algorithm", () => {
    const { qkv, bias } = setup(16, 230);
    const blockSize = 6; // 3 blocks, 2 padded positions
    const layout = denseLayout(16, blockSize);
    const rows = () => [0, 1, 2]; // the dense layout's rows
    for (const withBias of [true, false]) {
      const b = withBias ? bias : null;
      const sparse = runSparse(qkv, heads, 1, blockSize, layout, "reference", b);
      const dense = runDense(qkv, heads, { numCls: 1, probs: "cls", mask: null, bias: b });
      expect(maxAbsDiff(values(sparse.context), values(dense.context))).toBeGreaterThan(1e-3);
      const want = naiveSparse(qkv, heads, 1, blockSize, rows, "reference", b);
      expectClose(values(sparse.context), want.context, 1e-6);
      expectClose(values(sparse.probs), flattenProbs(want.probs, 1), 1e-7);
      // Global (CLS) rows are dense and unaffected by padding.
      expectClose(values(sparse.context).slice(0, c), values(dense.context).slice(0, c), 1e-6);
    }
  });

  it("(3b) a sparse SViTT-like layout (local + random) with padding matches the naive version in both modes", () => {
    const { qkv, bias } = setup(17, 240);
    const blockSize = 4; // 5 blocks, 3 padded positions in block 4
    const shared = [
      [0, 2, 4],
      [1, 3, 4],
      [2, 0, 1],
      [3, 4, 0],
      [4, 1, 2],
    ];
    const layout = customLayout(shared, heads);
    for (const padding of ["reference", "masked"] as const) {
      for (const withBias of [true, false]) {
        const b = withBias ? bias : null;
        const sparse = runSparse(qkv, heads, 1, blockSize, layout, padding, b);
        const want = naiveSparse(qkv, heads, 1, blockSize, (_h, m) => shared[m]!, padding, b);
        expectClose(values(sparse.context), want.context, 1e-6);
        expectClose(values(sparse.probs), flattenProbs(want.probs, 1), 1e-7);
      }
    }
  });

  it("(4) per-head layouts give each head its own rows", () => {
    const { qkv, bias } = setup(16, 250);
    const blockSize = 4; // 4 blocks, no padding
    const perHead = [
      [
        [0, 1],
        [1, 3],
        [2, 0],
        [3, 2],
      ],
      [
        [0, 3],
        [1, 0],
        [2, 1],
        [3, 1],
      ],
    ];
    const layout = customLayout(perHead, heads);
    expect(layout.heads).toBe(heads);
    for (const withBias of [true, false]) {
      const b = withBias ? bias : null;
      const sparse = runSparse(qkv, heads, 1, blockSize, layout, "reference", b);
      const want = naiveSparse(qkv, heads, 1, blockSize, (h, m) => perHead[h]![m]!, "reference", b);
      expectClose(values(sparse.context), want.context, 1e-6);
      // Using head 0's rows for both heads changes only head 1's channels.
      const head0 = runSparse(
        qkv,
        heads,
        1,
        blockSize,
        customLayout(perHead[0]!, heads),
        "reference",
        b,
      );
      const d = c / heads;
      const a = values(sparse.context);
      const s = values(head0.context);
      let head0Diff = 0;
      let head1Diff = 0;
      for (let i = 0; i < a.length; i++) {
        const diff = Math.abs(a[i]! - s[i]!);
        if (i % c < d) head0Diff = Math.max(head0Diff, diff);
        else head1Diff = Math.max(head1Diff, diff);
      }
      expect(head0Diff).toBe(0);
      expect(head1Diff).toBeGreaterThan(1e-3);
    }
  });

  it("(4b) a per-head layout repeating one shared layout equals the shared layout", () => {
    const { qkv, bias } = setup(14, 260);
    const rows = [
      [0, 2],
      [1, 0],
      [2, 3],
      [3, 1],
    ];
    const shared = runSparse(qkv, heads, 1, 4, customLayout(rows, heads), "reference", bias);
    const repeated = runSparse(
      qkv,
      heads,
      1,
      4,
      customLayout([rows, rows], heads),
      "reference",
      bias,
    );
    expect(values(repeated.context)).toEqual(values(shared.context));
  });
});
