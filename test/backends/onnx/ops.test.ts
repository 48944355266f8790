import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { TensorRef } from "../../../src/ir/graph.js";
import type { AttentionPattern, PaddingMode } from "../../../src/ir/pattern.js";
import { relPosTableRows } from "../../../src/ir/relpos.js";
import { f32Tensor, type HostTensor, i32Tensor } from "../../../src/ir/tensor.js";
import { initWeights, syntheticClip } from "../../../src/models/init.js";
import { customLayout } from "../../../src/patterns/layouts.js";
import { Rng } from "../../../src/patterns/random.js";
import { backendFor, expectParity, VARIANTS } from "./helpers.js";

/**
 * Single ops and attention nodes, built by hand to reach the cases compiled models do not:
 * run-time token indices with batch 1 serving batch 2, masks, several CLS rows, gathers on
 * inner axes, ties in topK. Each is checked against the reference backend.
 */

type Window = [number, number, number];

/** Token indices: a random subset of the window per batch row, in increasing order. */
function tokenIndex(rows: number, tokens: number, window: Window, seed: number): HostTensor {
  const total = window[0] * window[1] * window[2];
  const rng = Rng.stream(seed, "token-index");
  const data = new Int32Array(rows * tokens);
  for (let b = 0; b < rows; b++) {
    const order = Array.from({ length: total }, (_, i) => i);
    for (let i = total - 1; i > 0; i--) {
      const j = rng.below(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    data.set(
      order.slice(0, tokens).sort((x, y) => x - y),
      b * tokens,
    );
  }
  return i32Tensor([rows, tokens], data);
}

interface SparseCase {
  readonly batch: number;
  /** Global tokens (default 1). */
  readonly globals?: number;
  readonly tokens: number;
  readonly blockSize: number;
  readonly padding: PaddingMode;
  readonly perHead: boolean;
  /** "input": run-time token index with this batch; "constant": a graph constant; null: no bias. */
  readonly index: { readonly kind: "input" | "constant"; readonly batch: number } | null;
}

const WINDOW: Window = [2, 4, 4];
const HEADS = 4;
const WIDTH = 32;

function sparseGraph(c: SparseCase) {
  const b = new GraphBuilder("sparse");
  const shape = [c.batch, c.tokens, WIDTH];
  const q = b.input("q", { dtype: "f32", shape });
  const k = b.input("k", { dtype: "f32", shape });
  const v = b.input("v", { dtype: "f32", shape });
  const globals = c.globals ?? 1;
  const local = c.tokens - globals;
  const blocks = Math.ceil(local / c.blockSize);
  const rng = Rng.stream(7, "layout");
  const rows = (): number[][] =>
    Array.from({ length: blocks }, (_, m) => {
      const other = Array.from({ length: blocks }, (_, j) => j).filter((j) => j !== m);
      const pick = other[rng.below(other.length)]!;
      return [m, pick];
    });
  const layout = c.perHead
    ? customLayout(
        Array.from({ length: HEADS }, () => rows()),
        HEADS,
      )
    : customLayout(rows(), HEADS);
  const pattern: AttentionPattern = {
    globalTokens: globals,
    blockSize: c.blockSize,
    layout,
    origin: { kind: "custom", label: "test" },
  };
  const args: TensorRef[] = [q, k, v];
  const inputs: Record<string, HostTensor> = {};
  if (c.index !== null) {
    args.push(b.weight("table", [relPosTableRows(WINDOW), HEADS]));
    const value = tokenIndex(c.index.batch, local, WINDOW, 11);
    if (c.index.kind === "input") {
      args.push(b.input("token_idx", { dtype: "i32", shape: value.shape }));
      inputs.token_idx = value;
    } else {
      args.push(b.constant("token_idx", value));
    }
  }
  const [context, probs] = b.add("blockSparseAttention", args, {
    heads: HEADS,
    pattern,
    padding: c.padding,
    relPosBias: c.index === null ? null : { window: WINDOW },
  });
  b.output("context", context!);
  b.output("probs", probs!);
  const graph = b.build();
  return { graph, inputs: { ...syntheticClip(graph, 5), ...inputs } };
}

const SPARSE: [string, SparseCase][] = [
  [
    "run-time index of batch 1 serving batch 2, padded, masked",
    {
      batch: 2,
      tokens: 24,
      blockSize: 5,
      padding: "masked",
      perHead: false,
      index: { kind: "input", batch: 1 },
    },
  ],
  [
    "run-time index per batch row, padded, reference",
    {
      batch: 2,
      tokens: 24,
      blockSize: 5,
      padding: "reference",
      perHead: false,
      index: { kind: "input", batch: 2 },
    },
  ],
  [
    "per-head layouts, run-time index per batch row, masked",
    {
      batch: 2,
      tokens: 24,
      blockSize: 5,
      padding: "masked",
      perHead: true,
      index: { kind: "input", batch: 2 },
    },
  ],
  [
    "per-head layouts, constant index of batch 1 serving batch 2, reference",
    {
      batch: 2,
      tokens: 24,
      blockSize: 5,
      padding: "reference",
      perHead: true,
      index: { kind: "constant", batch: 1 },
    },
  ],
  [
    "no bias, padded, masked",
    { batch: 2, tokens: 30, blockSize: 8, padding: "masked", perHead: false, index: null },
  ],
  [
    "three global tokens, no bias, padded, masked",
    {
      batch: 2,
      globals: 3,
      tokens: 30,
      blockSize: 8,
      padding: "masked",
      perHead: false,
      index: null,
    },
  ],
  [
    "no bias, padded, reference, per-head",
    { batch: 1, tokens: 30, blockSize: 8, padding: "reference", perHead: true, index: null },
  ],
];

function denseGraph(opts: {
  batch: number;
  numCls: number;
  probs: "cls" | "all";
  mask: boolean;
  index: { kind: "input" | "constant"; batch: number } | null;
}) {
  const n = 17;
  const b = new GraphBuilder("dense");
  const shape = [opts.batch, n, WIDTH];
  const q = b.input("q", { dtype: "f32", shape });
  const k = b.input("k", { dtype: "f32", shape });
  const v = b.input("v", { dtype: "f32", shape });
  const args: TensorRef[] = [q, k, v];
  const inputs: Record<string, HostTensor> = {};
  if (opts.mask) {
    args.push(b.input("mask", { dtype: "f32", shape: [opts.batch, n] }));
    const mask = f32Tensor([opts.batch, n]);
    for (let i = 0; i < mask.data.length; i += 3) mask.data[i] = -10000;
    inputs.mask = mask;
  }
  if (opts.index !== null) {
    args.push(b.weight("table", [relPosTableRows(WINDOW), HEADS]));
    const value = tokenIndex(opts.index.batch, n - 1, WINDOW, 13);
    if (opts.index.kind === "input") {
      args.push(b.input("token_idx", { dtype: "i32", shape: value.shape }));
      inputs.token_idx = value;
    } else {
      args.push(b.constant("token_idx", value));
    }
  }
  const [context, probs] = b.add("attention", args, {
    heads: HEADS,
    numCls: opts.numCls,
    probs: opts.probs,
    mask: opts.mask,
    relPosBias: opts.index === null ? null : { window: WINDOW },
  });
  b.output("context", context!);
  b.output("probs", probs!);
  const graph = b.build();
  const clip = syntheticClip(graph, 6);
  return { graph, inputs: { ...clip, ...inputs } };
}

const DENSE: [string, Parameters<typeof denseGraph>[0]][] = [
  [
    "cls probs, run-time index of batch 1 serving batch 2",
    { batch: 2, numCls: 1, probs: "cls", mask: false, index: { kind: "input", batch: 1 } },
  ],
  [
    "cls probs, constant index per batch row",
    { batch: 2, numCls: 1, probs: "cls", mask: false, index: { kind: "constant", batch: 2 } },
  ],
  ["two CLS rows, no bias", { batch: 2, numCls: 2, probs: "cls", mask: false, index: null }],
  [
    "all probs, additive mask and bias",
    { batch: 2, numCls: 1, probs: "all", mask: true, index: { kind: "input", batch: 2 } },
  ],
];

describe("onnx backend: attention nodes match the reference backend", () => {
  for (const [variant, options] of VARIANTS) {
    describe(variant, () => {
      for (const [name, c] of SPARSE) {
        it(`blockSparseAttention: ${name}`, async () => {
          const { graph, inputs } = sparseGraph(c);
          await expectParity(graph, initWeights(graph, 1), inputs, options, 1e-5);
        });
      }
      for (const [name, c] of DENSE) {
        it(`attention: ${name}`, async () => {
          const { graph, inputs } = denseGraph(c);
          await expectParity(graph, initWeights(graph, 2), inputs, options, 1e-5);
        });
      }
    });
  }
});

describe("onnx backend: token and shape ops match the reference backend", () => {
  it("topK keeps the lower index on ties and returns indices ascending", async () => {
    const b = new GraphBuilder("topk");
    const scores = b.input("scores", { dtype: "f32", shape: [2, 8] });
    b.output("keep", b.add1("topK", [scores], { k: 4 }));
    const graph = b.build();
    const values = f32Tensor(
      [2, 8],
      Float32Array.from([1, 3, 3, 0, 3, 2, 5, 3, 0, 0, 0, 0, 1, 0, 0, 0]),
    );
    const out = await expectParity(graph, new Map(), { scores: values }, {});
    expect(Array.from(out.keep!.data)).toEqual([1, 2, 4, 6, 0, 1, 2, 4]);
  });

  it("gather on an inner axis, per-row and shared indices, f32 and i32", async () => {
    const b = new GraphBuilder("gather");
    const mask = b.input("mask", { dtype: "f32", shape: [2, 1, 1, 9] });
    const shared = b.input("shared", { dtype: "f32", shape: [1, 9, 3] });
    const batched = b.input("batched", { dtype: "f32", shape: [2, 9, 3] });
    const ids = b.input("ids", { dtype: "i32", shape: [1, 8] });
    const idx = b.input("idx", { dtype: "i32", shape: [2, 4] });
    const one = b.input("one", { dtype: "i32", shape: [1, 4] });
    b.output("mask_kept", b.add1("gather", [mask, idx], { axis: 3, keepPrefix: 1 }));
    b.output("shared_per_row", b.add1("gather", [shared, idx], { axis: 1, keepPrefix: 1 }));
    b.output("shared_one", b.add1("gather", [shared, one], { axis: 1, keepPrefix: 2 }));
    b.output("batched_one", b.add1("gather", [batched, one], { axis: 1, keepPrefix: 1 }));
    b.output("ids_kept", b.add1("gather", [ids, idx], { axis: 1, keepPrefix: 0 }));
    const graph = b.build();
    const inputs = {
      ...syntheticClip(graph, 8),
      ids: i32Tensor([1, 8], Int32Array.from([10, 11, 12, 13, 14, 15, 16, 17])),
      idx: i32Tensor([2, 4], Int32Array.from([0, 2, 5, 7, 1, 3, 4, 6])),
      one: i32Tensor([1, 4], Int32Array.from([0, 1, 4, 6])),
    };
    await expectParity(graph, new Map(), inputs, {}, 0);
  });

  it("prependTokens broadcasts, meanTokens, reshape, linear without bias, tokenScores", async () => {
    const b = new GraphBuilder("misc");
    const x = b.input("x", { dtype: "f32", shape: [3, 5, 8] });
    const cls = b.weight("cls", [1, 2, 8]);
    const seq = b.add1("prependTokens", [cls, x], {});
    b.output("seq", seq);
    b.output("mean0", b.add1("meanTokens", [seq], { skip: 0 }));
    b.output("mean2", b.add1("meanTokens", [seq], { skip: 2 }));
    const flat = b.add1("reshape", [seq], { shape: [21, 8] });
    b.output("proj", b.add1("linear", [flat, b.weight("w", [6, 8])], {}));
    const probs = b.add1("reshape", [b.add1("linear", [seq, b.weight("w2", [7, 8])], {})], {
      shape: [3, 1, 1, 7 * 7],
    });
    b.output("scores", b.add1("tokenScores", [probs], { row: 0, skip: 3 }));
    const graph = b.build();
    await expectParity(graph, initWeights(graph, 9), syntheticClip(graph, 9), {});
  });

  it("runs with 1 thread and rejects a bad thread count", async () => {
    const b = new GraphBuilder("threads");
    const x = b.input("x", { dtype: "f32", shape: [2, 3] });
    b.output("y", b.add1("gelu", [x], {}));
    const graph = b.build();
    const backend = backendFor({});
    const exe = await backend.compile(graph, new Map(), { threads: 1 });
    expect(exe.detail).toContain("1 intra-op thread");
    exe.dispose();
    await expect(backend.compile(graph, new Map(), { threads: 0 })).rejects.toThrow(/threads/);
  });
});
