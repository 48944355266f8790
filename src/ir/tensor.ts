import type { DType } from "./dtype.js";

/** Static type of a tensor edge: element type and a fully known shape. */
export interface TensorType {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** A tensor held in host memory, row-major (C order). */
export type HostTensor =
  | { readonly dtype: "f32"; readonly shape: readonly number[]; readonly data: Float32Array }
  | { readonly dtype: "i32"; readonly shape: readonly number[]; readonly data: Int32Array };

export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

export function formatType(type: TensorType): string {
  return `${type.dtype}${formatShape(type.shape)}`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function f32Tensor(
  shape: readonly number[],
  data?: Float32Array,
): HostTensor & { dtype: "f32" } {
  const n = numElements(shape);
  const values = data ?? new Float32Array(n);
  if (values.length !== n) {
    throw new RangeError(
      `f32 tensor ${formatShape(shape)} needs ${n} values, got ${values.length}`,
    );
  }
  return { dtype: "f32", shape: [...shape], data: values };
}

export function i32Tensor(
  shape: readonly number[],
  data?: Int32Array,
): HostTensor & { dtype: "i32" } {
  const n = numElements(shape);
  const values = data ?? new Int32Array(n);
  if (values.length !== n) {
    throw new RangeError(
      `i32 tensor ${formatShape(shape)} needs ${n} values, got ${values.length}`,
    );
  }
  return { dtype: "i32", shape: [...shape], data: values };
}

export function typeOfTensor(t: HostTensor): TensorType {
  return { dtype: t.dtype, shape: t.shape };
}
