import { ShapeError } from "../errors.js";
import { formatType, numElements } from "../tensor.js";
import type { OpDef } from "./def.js";
import { broadcastShapes, expectDim, expectType, f32 } from "./shape-utils.js";

function expectF32(what: string, dtype: string): void {
  if (dtype !== "f32") throw new ShapeError(`${what} must be f32, got ${dtype}`);
}

export const linear: OpDef<"linear"> = {
  family: "dense",
  arity: [2, 3],
  // Each row of x maps to one row of y; W and b are read whole.
  perToken: { axes: "leading", carriers: [0] },
  infer: ([x, w, b]) => {
    expectF32("linear input", x!.dtype);
    if (x!.shape.length < 1) throw new ShapeError("linear input must have rank >= 1");
    const [out, inFeatures] = expectType("linear weight", w!, "f32", 2);
    expectDim("linear weight in-features", inFeatures!, x!.shape.at(-1)!);
    if (b !== undefined)
      expectDim("linear bias length", expectType("linear bias", b, "f32", 1)[0]!, out!);
    return [f32([...x!.shape.slice(0, -1), out!])];
  },
};

const binary = (name: string): OpDef<"add" | "mul"> => ({
  family: "dense",
  arity: [2, 2],
  perToken: { axes: "all", carriers: "all" },
  infer: ([a, b]) => {
    expectF32(`${name} lhs`, a!.dtype);
    expectF32(`${name} rhs`, b!.dtype);
    return [f32(broadcastShapes(a!.shape, b!.shape))];
  },
});

export const add: OpDef<"add"> = binary("add");
export const mul: OpDef<"mul"> = binary("mul");

export const gelu: OpDef<"gelu"> = {
  family: "dense",
  arity: [1, 1],
  perToken: { axes: "all", carriers: "all" },
  infer: ([x]) => {
    expectF32("gelu input", x!.dtype);
    return [x!];
  },
};

export const layerNorm: OpDef<"layerNorm"> = {
  family: "dense",
  arity: [3, 3],
  // Statistics over the last axis only; gamma and beta are read whole.
  perToken: { axes: "leading", carriers: [0] },
  infer: ([x, gamma, beta], attrs) => {
    expectF32("layerNorm input", x!.dtype);
    const c = x!.shape.at(-1);
    if (c === undefined) throw new ShapeError("layerNorm input must have rank >= 1");
    expectDim("layerNorm weight length", expectType("layerNorm weight", gamma!, "f32", 1)[0]!, c);
    expectDim("layerNorm bias length", expectType("layerNorm bias", beta!, "f32", 1)[0]!, c);
    if (!(attrs.eps > 0)) throw new ShapeError(`layerNorm eps must be > 0, got ${attrs.eps}`);
    return [x!];
  },
};

export const reshape: OpDef<"reshape"> = {
  family: "dense",
  arity: [1, 1],
  infer: ([x], attrs) => {
    if (numElements(attrs.shape) !== numElements(x!.shape)) {
      throw new ShapeError(`cannot reshape ${formatType(x!)} to [${attrs.shape.join(",")}]`);
    }
    return [{ dtype: x!.dtype, shape: attrs.shape }];
  },
};
