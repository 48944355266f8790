import { ShapeError } from "../errors.js";
import { layoutProblems, tokenProblems } from "../pattern.js";
import { relPosTableRows } from "../relpos.js";
import type { TensorType } from "../tensor.js";
import type { OpDef } from "./def.js";
import type { RelPosBiasAttrs } from "./types.js";
import { broadcastBatch, expectDim, expectPositiveInt, expectType, f32 } from "./shape-utils.js";

/** q, k, v as [B, Nq, C], [B, Nk, C], [B, Nk, C]; returns [B, Nq, Nk, C]. */
function checkQkv(q: TensorType, k: TensorType, v: TensorType, heads: number): number[] {
  const [b, nq, c] = expectType("attention query", q, "f32", 3);
  const [kb, nk, kc] = expectType("attention key", k, "f32", 3);
  const [vb, vn, vc] = expectType("attention value", v, "f32", 3);
  expectDim("attention key batch", kb!, b!);
  expectDim("attention value batch", vb!, b!);
  expectDim("attention key width", kc!, c!);
  expectDim("attention value width", vc!, c!);
  expectDim("attention value tokens", vn!, nk!);
  expectPositiveInt("attention heads", heads);
  if (c! % heads !== 0) {
    throw new ShapeError(`hidden size ${c} is not divisible by ${heads} heads`);
  }
  return [b!, nq!, nk!, c!];
}

/** Checks the bias table [rows, heads] and token index [1|B, tokens - 1]. */
function checkRelPosBias(
  bias: RelPosBiasAttrs,
  table: TensorType | undefined,
  tokenIdx: TensorType | undefined,
  batch: number,
  tokens: number,
  heads: number,
  numCls: number,
): void {
  if (table === undefined || tokenIdx === undefined) {
    throw new ShapeError("relative position bias needs a bias table and a token index input");
  }
  if (numCls !== 1) {
    throw new ShapeError(`relative position bias supports exactly 1 CLS token, got ${numCls}`);
  }
  for (const [i, d] of bias.window.entries())
    expectPositiveInt(`relative position window[${i}]`, d);
  const [rows, tableHeads] = expectType("relative position bias table", table, "f32", 2);
  expectDim("relative position bias table rows", rows!, relPosTableRows(bias.window));
  expectDim("relative position bias table heads", tableHeads!, heads);
  const [ib, il] = expectType("token index", tokenIdx, "i32", 2);
  broadcastBatch("token index", ib!, batch);
  expectDim("token index length", il!, tokens - numCls);
  const windowTokens = bias.window[0] * bias.window[1] * bias.window[2];
  if (tokens - numCls > windowTokens) {
    throw new ShapeError(
      `${tokens - numCls} local tokens exceed the ${windowTokens} of the bias window`,
    );
  }
}

export const attention: OpDef<"attention"> = {
  family: "attention",
  arity: [3, 6],
  infer: (inputs, attrs) => {
    const [q, k, v] = inputs;
    const [b, nq, nk, c] = checkQkv(q!, k!, v!, attrs.heads);
    const expectedArity = 3 + (attrs.mask ? 1 : 0) + (attrs.relPosBias ? 2 : 0);
    if (inputs.length !== expectedArity) {
      throw new ShapeError(
        `attention expects ${expectedArity} inputs for its attributes, got ${inputs.length}`,
      );
    }
    let next = 3;
    if (attrs.mask) {
      // [B, Nk] (one additive term per key, BERT's padding mask) or [B, Nq, Nk] (per pair).
      const mask = inputs[next++]!;
      const rank = mask.shape.length === 3 ? 3 : 2;
      const dims = expectType("attention mask", mask, "f32", rank);
      expectDim("attention mask batch", dims[0]!, b!);
      if (rank === 3) expectDim("attention mask queries", dims[1]!, nq!);
      expectDim("attention mask length", dims[rank - 1]!, nk!);
    }
    if (!(Number.isInteger(attrs.numCls) && attrs.numCls >= 0 && attrs.numCls <= nq!)) {
      throw new ShapeError(`attention numCls ${attrs.numCls} outside [0, ${nq}]`);
    }
    if (attrs.relPosBias) {
      if (nq !== nk) throw new ShapeError("relative position bias needs self-attention (Nq = Nk)");
      checkRelPosBias(
        attrs.relPosBias,
        inputs[next],
        inputs[next + 1],
        b!,
        nq!,
        attrs.heads,
        attrs.numCls,
      );
    }
    if (attrs.probs === "cls" && attrs.numCls < 1) {
      throw new ShapeError('attention probs "cls" needs numCls >= 1');
    }
    const rows = attrs.probs === "cls" ? attrs.numCls : nq!;
    return [f32([b!, nq!, c!]), f32([b!, attrs.heads, rows, nk!])];
  },
};

export const blockSparseAttention: OpDef<"blockSparseAttention"> = {
  family: "attention",
  arity: [3, 5],
  infer: (inputs, attrs) => {
    const [q, k, v] = inputs;
    const [b, nq, nk, c] = checkQkv(q!, k!, v!, attrs.heads);
    if (nq !== nk)
      throw new ShapeError(
        `block-sparse attention needs self-attention, got ${nq} queries and ${nk} keys`,
      );
    const { pattern } = attrs;
    const g = pattern.globalTokens;
    if (!(Number.isInteger(g) && g >= 1 && g < nq!)) {
      throw new ShapeError(`pattern global tokens ${g} must be in [1, ${nq! - 1}]`);
    }
    expectPositiveInt("pattern block size", pattern.blockSize);
    const problems = layoutProblems(pattern.layout, attrs.heads, attrs.padding, pattern.blockSize);
    if (problems.length > 0) throw new ShapeError(`block layout: ${problems.join("; ")}`);
    const mismatch = tokenProblems(pattern, nq! - g);
    if (mismatch.length > 0) throw new ShapeError(`block pattern: ${mismatch.join("; ")}`);
    const expectedArity = 3 + (attrs.relPosBias ? 2 : 0);
    if (inputs.length !== expectedArity) {
      throw new ShapeError(
        `blockSparseAttention expects ${expectedArity} inputs, got ${inputs.length}`,
      );
    }
    if (attrs.relPosBias) {
      checkRelPosBias(attrs.relPosBias, inputs[3], inputs[4], b!, nq!, attrs.heads, g);
    }
    return [f32([b!, nq!, c!]), f32([b!, attrs.heads, g, nk!])];
  },
};
