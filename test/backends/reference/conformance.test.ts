import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { referenceBackend } from "../../../backends/reference/index.js";
import { readSafetensors } from "../../../src/io/safetensors.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { TensorRef } from "../../../src/ir/graph.js";
import type { AttentionPattern } from "../../../src/ir/pattern.js";
import { type HostTensor, i32Tensor } from "../../../src/ir/tensor.js";
import { customLayout } from "../../../src/patterns/layouts.js";
import { expectClose, values } from "./helpers.js";

/**
 * The reference kernels against the authors' PyTorch outputs in the shared conformance
 * cases: self-attention modules (dense and block-sparse, with and without bias and
 * padding) and whole BEiT layers, the full-size one included. The graphs are assembled
 * here by hand from the ops, independently of the model builders.
 */

type Window = [number, number, number];

async function load(name: string): Promise<Map<string, HostTensor>> {
  const path = fileURLToPath(
    new URL(`../../../../shared/conformance/${name}.safetensors`, import.meta.url),
  );
  return (await readSafetensors(path)).tensors;
}

function tensor(file: Map<string, HostTensor>, name: string): HostTensor {
  const t = file.get(name);
  if (t === undefined) throw new Error(`conformance file has no tensor ${name}`);
  return t;
}

interface AttentionSpec {
  readonly heads: number;
  readonly window: Window | null;
  /** Block size and random blocks per row; null for the dense path. */
  readonly sparse: { readonly blockSize: number } | null;
}

/** Layout rows [m, random...] (local window 1) from the stored random blocks. */
function pattern(
  file: Map<string, HostTensor>,
  key: string,
  blockSize: number,
  heads: number,
): AttentionPattern {
  const random = tensor(file, key);
  const [blocks, count] = random.shape as [number, number];
  const rows = Array.from({ length: blocks }, (_, m) => [
    m,
    ...Array.from(random.data.subarray(m * count, (m + 1) * count)),
  ]);
  return {
    globalTokens: 1,
    blockSize,
    layout: customLayout(rows, heads),
    origin: { kind: "custom", label: "conformance" },
  };
}

/**
 * BeitSelfAttention: q, k (no bias), v projections, then dense or block-sparse attention.
 * Returns [context, cls probs]; adds a token-index input or constant when there is a bias.
 */
function selfAttention(
  b: GraphBuilder,
  file: Map<string, HostTensor>,
  x: TensorRef,
  tokenIdx: TensorRef,
  spec: AttentionSpec,
  patternKey: string,
): TensorRef[] {
  const c = b.shapeOf(x)[2]!;
  const q = b.add1(
    "linear",
    [x, b.weight("query.weight", [c, c]), b.weight("query.bias", [c])],
    {},
  );
  const k = b.add1("linear", [x, b.weight("key.weight", [c, c])], {});
  const v = b.add1(
    "linear",
    [x, b.weight("value.weight", [c, c]), b.weight("value.bias", [c])],
    {},
  );
  const args = [q, k, v];
  const relPosBias = spec.window === null ? null : { window: spec.window };
  if (spec.window !== null) {
    const rows = (2 * spec.window[0] - 1) * (2 * spec.window[1] - 1) * (2 * spec.window[2] - 1) + 3;
    args.push(
      b.weight("relative_position_bias.relative_position_bias_table", [rows, spec.heads]),
      tokenIdx,
    );
  }
  if (spec.sparse === null) {
    return b.add("attention", args, {
      heads: spec.heads,
      numCls: 1,
      probs: "cls",
      mask: false,
      relPosBias,
    });
  }
  return b.add("blockSparseAttention", args, {
    heads: spec.heads,
    pattern: pattern(file, patternKey, spec.sparse.blockSize, spec.heads),
    padding: "reference",
    relPosBias,
  });
}

/** The token index: the stored input, or 0..L-1 as a [1, L] constant. */
function tokenIndex(
  b: GraphBuilder,
  file: Map<string, HostTensor>,
  n: number,
): { ref: TensorRef; inputs: Record<string, HostTensor> } {
  const stored = file.get("input.token_idx");
  if (stored !== undefined) {
    return {
      ref: b.input("token_idx", { dtype: "i32", shape: stored.shape }),
      inputs: { token_idx: stored },
    };
  }
  const data = Int32Array.from({ length: n - 1 }, (_, i) => i);
  return { ref: b.constant("token_idx", i32Tensor([1, n - 1], data)), inputs: {} };
}

const attentionCases: [string, AttentionSpec][] = [
  ["a1_selfattn_dense_rpb", { heads: 4, window: [2, 4, 4], sparse: null }],
  ["a2_selfattn_dense_rpb_tokenidx", { heads: 4, window: [2, 4, 4], sparse: null }],
  ["b1_selfattn_sparse_rpb_div", { heads: 4, window: [2, 4, 4], sparse: { blockSize: 8 } }],
  ["b2_selfattn_sparse_rpb_pad", { heads: 4, window: [3, 4, 4], sparse: { blockSize: 10 } }],
  ["b3_selfattn_sparse_norpb_pad", { heads: 4, window: null, sparse: { blockSize: 10 } }],
  ["b4_selfattn_sparse_norpb_div", { heads: 4, window: null, sparse: { blockSize: 4 } }],
  ["b5_selfattn_sparse_rpb_7x7_pad", { heads: 4, window: [2, 7, 7], sparse: { blockSize: 16 } }],
];

describe("conformance: BeitSelfAttention", () => {
  for (const [name, spec] of attentionCases) {
    it(name, async () => {
      const file = await load(name);
      const hidden = tensor(file, "input.hidden_states");
      const b = new GraphBuilder(name);
      const x = b.input("hidden_states", { dtype: "f32", shape: hidden.shape });
      const idx = tokenIndex(b, file, hidden.shape[1]!);
      const [context, probs] = selfAttention(b, file, x, idx.ref, spec, "pattern.random_block_idx");
      b.output("context", context!);
      b.output("probs", probs!);
      const exe = await referenceBackend.compile(b.build(), file);
      const out = await exe.run({ hidden_states: hidden, ...idx.inputs });
      expectClose(values(out.context), values(tensor(file, "expected.context")), 1e-6, 1e-4);
      expectClose(
        values(out.probs),
        values(tensor(file, "expected.cls_attention_probs")),
        1e-6,
        1e-4,
      );
    });
  }
});

/**
 * BeitLayer with node sparsification:
 *   h = x + λ₁ · dense(attention(LN_before(x))),  y = h + λ₂ · fc2(gelu(fc1(LN_after(h)))),
 *   keep = topK(mean_h cls_probs[:, :, 0, 1:], ⌈0.7 L⌉); output [CLS, y[1 + keep]] and
 *   token_keep_idx = token_idx[keep].
 */
async function layerCase(
  name: string,
  spec: AttentionSpec & { readonly keep: number },
): Promise<void> {
  const file = await load(name);
  const hidden = tensor(file, "input.hidden_states");
  const [, n, c] = hidden.shape as [number, number, number];
  const inner = tensor(file, "intermediate.dense.weight").shape[0]!;
  const b = new GraphBuilder(name);
  const x = b.input("hidden_states", { dtype: "f32", shape: hidden.shape });
  const idx = tokenIndex(b, file, n);
  const ln = (input: TensorRef, key: string) =>
    b.add1("layerNorm", [input, b.weight(`${key}.weight`, [c]), b.weight(`${key}.bias`, [c])], {
      eps: 1e-12,
    });
  const dense = (input: TensorRef, key: string, out: number, width: number) =>
    b.add1(
      "linear",
      [input, b.weight(`${key}.weight`, [out, width]), b.weight(`${key}.bias`, [out])],
      {},
    );
  const normed = ln(x, "layernorm_before");
  const [context, probs] = b.withScope("attention.attention", () =>
    selfAttention(b, file, normed, idx.ref, spec, "pattern.random_block_idx"),
  );
  const attended = dense(context!, "attention.output.dense", c, c);
  const h = b.add1("add", [x, b.add1("mul", [b.weight("lambda_1", [c]), attended], {})], {});
  const ffn = dense(
    b.add1("gelu", [dense(ln(h, "layernorm_after"), "intermediate.dense", inner, c)], {}),
    "output.dense",
    c,
    inner,
  );
  const y = b.add1("add", [h, b.add1("mul", [b.weight("lambda_2", [c]), ffn], {})], {});
  const scores = b.add1("tokenScores", [probs!], { row: 0, skip: 1 });
  const keep = b.add1("topK", [scores], { k: spec.keep });
  b.output("layer_output", b.add1("gather", [y, keep], { axis: 1, keepPrefix: 1 }));
  b.output("token_keep_idx", b.add1("gather", [idx.ref, keep], { axis: 1, keepPrefix: 0 }));
  b.output("cls_attention_probs", probs!);
  b.output("attention_context", context!);
  const exe = await referenceBackend.compile(b.build(), file);
  const out = await exe.run({ hidden_states: hidden, ...idx.inputs });
  expect(values(out.token_keep_idx)).toEqual(values(tensor(file, "expected.token_keep_idx")));
  expectClose(
    values(out.attention_context),
    values(tensor(file, "expected.attention_context")),
    1e-5,
    1e-4,
  );
  expectClose(
    values(out.cls_attention_probs),
    values(tensor(file, "expected.cls_attention_probs")),
    1e-6,
    1e-4,
  );
  expectClose(values(out.layer_output), values(tensor(file, "expected.layer_output")), 1e-4, 1e-4);
  exe.dispose();
}

describe("conformance: BeitLayer with token dropping", () => {
  it("c1_layer_sparse_keep07", () =>
    layerCase("c1_layer_sparse_keep07", {
      heads: 4,
      window: [2, 4, 4],
      sparse: { blockSize: 8 },
      keep: 23,
    }));
  it("c2_layer_sparse_keep07_pad_tokenidx (per-sample token index, padded block)", () =>
    layerCase("c2_layer_sparse_keep07_pad_tokenidx", {
      heads: 4,
      window: [3, 4, 4],
      sparse: { blockSize: 6 },
      keep: 24,
    }));
  it("f1_layer_full_768 (hidden 768, 393 tokens, FFN 3072)", () =>
    layerCase("f1_layer_full_768", {
      heads: 12,
      window: [2, 14, 14],
      sparse: { blockSize: 56 },
      keep: 275,
    }));
});
