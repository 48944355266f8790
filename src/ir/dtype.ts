/**
 * Element types. sprig computes in float32 and indexes with int32; int64 tensors from
 * PyTorch files are narrowed to int32 on load (with a range check) because no backend
 * here has fast 64-bit integers and token counts stay far below 2^31.
 */
export type DType = "f32" | "i32";

export const DTYPES: readonly DType[] = ["f32", "i32"];

export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case "f32":
    case "i32":
      return 4;
    default:
      return dtype satisfies never;
  }
}
