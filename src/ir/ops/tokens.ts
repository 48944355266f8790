import { ShapeError } from "../errors.js";
import type { OpDef } from "./def.js";
import { broadcastBatch, expectType, f32, i32 } from "./shape-utils.js";

export const tokenScores: OpDef<"tokenScores"> = {
  family: "tokens",
  arity: [1, 1],
  infer: ([probs], attrs) => {
    const [b, , rows, keys] = expectType("tokenScores probabilities", probs!, "f32", 4);
    if (!(Number.isInteger(attrs.row) && attrs.row >= 0 && attrs.row < rows!)) {
      throw new ShapeError(`tokenScores row ${attrs.row} outside [0, ${rows})`);
    }
    if (!(Number.isInteger(attrs.skip) && attrs.skip >= 0 && attrs.skip < keys!)) {
      throw new ShapeError(
        `tokenScores skip ${attrs.skip} must leave at least one of ${keys} keys`,
      );
    }
    return [f32([b!, keys! - attrs.skip])];
  },
};

export const topK: OpDef<"topK"> = {
  family: "tokens",
  arity: [1, 1],
  infer: ([scores], attrs) => {
    const [b, l] = expectType("topK scores", scores!, "f32", 2);
    if (!(Number.isInteger(attrs.k) && attrs.k >= 1 && attrs.k <= l!)) {
      throw new ShapeError(`topK k = ${attrs.k} outside [1, ${l}]`);
    }
    return [i32([b!, attrs.k])];
  },
};

export const gather: OpDef<"gather"> = {
  family: "tokens",
  arity: [2, 2],
  infer: ([x, idx], attrs) => {
    const shape = x!.shape;
    const { axis, keepPrefix } = attrs;
    if (!(Number.isInteger(axis) && axis >= 1 && axis < shape.length)) {
      throw new ShapeError(`gather axis ${axis} outside [1, ${shape.length - 1}]`);
    }
    const [ib, k] = expectType("gather indices", idx!, "i32", 2);
    if (!(Number.isInteger(keepPrefix) && keepPrefix >= 0 && keepPrefix + k! <= shape[axis]!)) {
      throw new ShapeError(
        `gather keeps ${keepPrefix} + ${k} of ${shape[axis]} entries on axis ${axis}`,
      );
    }
    const out = [...shape];
    out[0] = broadcastBatch("gather", shape[0]!, ib!);
    out[axis] = keepPrefix + k!;
    return [{ dtype: x!.dtype, shape: out }];
  },
};
