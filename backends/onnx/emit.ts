import type { Attrs, ElemType, OnnxGraphWriter } from "./proto.js";

/**
 * ONNX ops as methods, for writing one sprig node's lowering: every value it creates is
 * named after the node (`%19/MatMul`, ...), which keeps ORT's error messages and the
 * exported graph readable. Values are ONNX value names.
 */
export class Emitter {
  constructor(
    readonly w: OnnxGraphWriter,
    readonly base: string,
  ) {}

  op(opType: string, inputs: readonly string[], attrs?: Attrs): string {
    return this.w.op(opType, inputs, attrs, `${this.base}/${opType}`);
  }

  reshape(x: string, shape: readonly number[]): string {
    return this.op("Reshape", [x, this.w.i64(shape)]);
  }

  transpose(x: string, perm: readonly number[]): string {
    return this.op("Transpose", [x], { perm });
  }

  /** x[starts:ends] along `axes` (ONNX Slice, step 1). */
  slice(
    x: string,
    starts: readonly number[],
    ends: readonly number[],
    axes: readonly number[],
  ): string {
    return this.op("Slice", [x, this.w.i64(starts), this.w.i64(ends), this.w.i64(axes)]);
  }

  concat(values: readonly string[], axis: number): string {
    return values.length === 1 ? values[0]! : this.op("Concat", values, { axis });
  }

  /** Zero padding at the end of `axis` (rank `rank`) by `count` entries. */
  padEnd(x: string, rank: number, axis: number, count: number): string {
    if (count === 0) return x;
    const pads = new Array<number>(2 * rank).fill(0);
    pads[rank + axis] = count;
    return this.op("Pad", [x, this.w.i64(pads)], { mode: "constant" });
  }

  matmul(a: string, b: string): string {
    return this.op("MatMul", [a, b]);
  }

  add(a: string, b: string): string {
    return this.op("Add", [a, b]);
  }

  sub(a: string, b: string): string {
    return this.op("Sub", [a, b]);
  }

  mul(a: string, b: string): string {
    return this.op("Mul", [a, b]);
  }

  div(a: string, b: string): string {
    return this.op("Div", [a, b]);
  }

  /** Integer remainder (ONNX Mod with fmod = 0: the sign of the divisor, here positive). */
  mod(a: string, b: string): string {
    return this.op("Mod", [a, b], { fmod: 0 });
  }

  gather(x: string, indices: string, axis: number): string {
    return this.op("Gather", [x, indices], { axis });
  }

  where(condition: string, a: string, b: string): string {
    return this.op("Where", [condition, a, b]);
  }

  softmax(x: string): string {
    return this.op("Softmax", [x], { axis: -1 });
  }

  cast(x: string, to: ElemType): string {
    const code = { float: 1, int32: 6, int64: 7, bool: 9 }[to];
    return this.op("Cast", [x], { to: code });
  }

  expand(x: string, shape: readonly number[]): string {
    return this.op("Expand", [x, this.w.i64(shape)]);
  }

  /** Mean over `axes` (opset 17: axes is an attribute). */
  reduceMean(x: string, axes: readonly number[], keepdims: boolean): string {
    return this.op("ReduceMean", [x], { axes, keepdims: keepdims ? 1 : 0 });
  }

  /** Sum over `axes` (opset 13+: axes is an int64 input). */
  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    return this.op("ReduceSum", [x, this.w.i64(axes)], { keepdims: keepdims ? 1 : 0 });
  }

  /** int32 scalar constant. */
  int(value: number): string {
    return this.w.i32([value], []);
  }

  /** float32 scalar constant. */
  float(value: number): string {
    return this.w.f32([value], []);
  }
}
