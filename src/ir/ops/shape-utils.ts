import type { DType } from "../dtype.js";
import { ShapeError } from "../errors.js";
import { formatShape, formatType, type TensorType } from "../tensor.js";

/** Small checks shared by the shape rules; each throws ShapeError with a precise message. */

export function f32(shape: readonly number[]): TensorType {
  return { dtype: "f32", shape };
}

export function i32(shape: readonly number[]): TensorType {
  return { dtype: "i32", shape };
}

export function expectType(
  what: string,
  type: TensorType,
  dtype: DType,
  rank: number,
): readonly number[] {
  if (type.dtype !== dtype || type.shape.length !== rank) {
    throw new ShapeError(`${what} must be ${dtype} of rank ${rank}, got ${formatType(type)}`);
  }
  return type.shape;
}

export function expectDim(what: string, actual: number, expected: number): void {
  if (actual !== expected) {
    throw new ShapeError(`${what} is ${actual}, expected ${expected}`);
  }
}

export function expectPositiveInt(what: string, value: number): void {
  if (!(Number.isInteger(value) && value >= 1)) {
    throw new ShapeError(`${what} must be a positive integer, got ${value}`);
  }
}

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Batch dimension shared by two operands where either may be 1. */
export function broadcastBatch(what: string, a: number, b: number): number {
  if (a !== b && a !== 1 && b !== 1) {
    throw new ShapeError(`${what}: batch sizes ${a} and ${b} do not broadcast`);
  }
  return Math.max(a, b);
}
