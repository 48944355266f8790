import { ShapeError } from "../errors.js";
import { formatType, type TensorType } from "../tensor.js";
import type { OpDef } from "./def.js";
import { expectDim, expectType, f32 } from "./shape-utils.js";

/**
 * Shape rules of the text-encoder, fusion and retrieval ops (semantics in types.ts, section
 * "text and retrieval"). Row look-ups (embedding) belong to the embedding family; the rest
 * are plain math or data movement on static shapes, the dense family.
 */

function expectFinite(what: string, value: number): void {
  if (!Number.isFinite(value))
    throw new ShapeError(`${what} must be a finite number, got ${value}`);
}

function expectRankAtLeastOne(what: string, type: TensorType): void {
  if (type.shape.length < 1)
    throw new ShapeError(`${what} must have rank >= 1, got ${formatType(type)}`);
}

/** table f32 [V, C], ids i32 [B, L] -> f32 [B, L, C]. */
export const embedding: OpDef<"embedding"> = {
  family: "embedding",
  arity: [2, 2],
  infer: ([table, ids]) => {
    const [, width] = expectType("embedding table", table!, "f32", 2);
    const [batch, length] = expectType("embedding ids", ids!, "i32", 2);
    return [f32([batch!, length!, width!])];
  },
};

/** m i32 [B, L] -> f32 [B, L]: (1 - m) · fill. */
export const additiveMask: OpDef<"additiveMask"> = {
  family: "dense",
  arity: [1, 1],
  perToken: { axes: "all", carriers: "all" },
  infer: ([mask], attrs) => {
    const shape = expectType("additiveMask token mask", mask!, "i32", 2);
    expectFinite("additiveMask fill", attrs.fill);
    return [f32(shape)];
  },
};

/** x f32 [..., D] -> same type: x / max(‖x‖₂, eps) over the last axis. */
export const l2Normalize: OpDef<"l2Normalize"> = {
  family: "dense",
  arity: [1, 1],
  perToken: { axes: "leading", carriers: [0] },
  infer: ([x], attrs) => {
    if (x!.dtype !== "f32")
      throw new ShapeError(`l2Normalize input must be f32, got ${formatType(x!)}`);
    expectRankAtLeastOne("l2Normalize input", x!);
    if (!(Number.isFinite(attrs.eps) && attrs.eps > 0)) {
      throw new ShapeError(`l2Normalize eps must be a finite number > 0, got ${attrs.eps}`);
    }
    return [x!];
  },
};

/** a f32 [M, D], b f32 [N, D] -> f32 [M, N] = scale · a bᵀ. */
export const similarity: OpDef<"similarity"> = {
  family: "dense",
  arity: [2, 2],
  infer: ([a, b], attrs) => {
    const [rows, width] = expectType("similarity lhs", a!, "f32", 2);
    const [columns, rhsWidth] = expectType("similarity rhs", b!, "f32", 2);
    expectDim("similarity rhs width", rhsWidth!, width!);
    expectFinite("similarity scale", attrs.scale);
    return [f32([rows!, columns!])];
  },
};

/** x [B, ...] (f32 or i32), idx i32 [P] -> [P, ...] of x's dtype. */
export const selectBatch: OpDef<"selectBatch"> = {
  family: "dense",
  arity: [2, 2],
  infer: ([x, idx]) => {
    expectRankAtLeastOne("selectBatch input", x!);
    const [picks] = expectType("selectBatch indices", idx!, "i32", 1);
    return [{ dtype: x!.dtype, shape: [picks!, ...x!.shape.slice(1)] }];
  },
};

/** x [.., D, ..] -> [.., end - start, ..] along `axis`, dtype kept. */
export const slice: OpDef<"slice"> = {
  family: "dense",
  arity: [1, 1],
  infer: ([x], attrs) => {
    const { axis, start, end } = attrs;
    const rank = x!.shape.length;
    if (!(Number.isInteger(axis) && axis >= 0 && axis < rank)) {
      throw new ShapeError(`slice axis ${axis} outside [0, ${rank - 1}] for ${formatType(x!)}`);
    }
    const size = x!.shape[axis]!;
    if (
      !(
        Number.isInteger(start) &&
        Number.isInteger(end) &&
        start >= 0 &&
        start < end &&
        end <= size
      )
    ) {
      throw new ShapeError(
        `slice ${start}..${end} on axis ${axis} (size ${size}) needs integers 0 <= start < end <= ${size}`,
      );
    }
    const shape = [...x!.shape];
    shape[axis] = end - start;
    return [{ dtype: x!.dtype, shape }];
  },
};
