import { ShapeError } from "../errors.js";
import type { OpDef } from "./def.js";
import { broadcastBatch, expectDim, expectPositiveInt, expectType, f32 } from "./shape-utils.js";

export const patchEmbed: OpDef<"patchEmbed"> = {
  family: "embedding",
  arity: [3, 3],
  infer: ([pixels, w, b], attrs) => {
    const p = attrs.patchSize;
    expectPositiveInt("patchEmbed patchSize", p);
    const [batch, frames, channels, height, width] = expectType(
      "patchEmbed pixels",
      pixels!,
      "f32",
      5,
    );
    const [hidden, inChannels, kh, kw] = expectType("patchEmbed weight", w!, "f32", 4);
    expectDim("patchEmbed weight in-channels", inChannels!, channels!);
    expectDim("patchEmbed kernel height", kh!, p);
    expectDim("patchEmbed kernel width", kw!, p);
    expectDim("patchEmbed bias length", expectType("patchEmbed bias", b!, "f32", 1)[0]!, hidden!);
    if (height! % p !== 0 || width! % p !== 0) {
      throw new ShapeError(`frame size ${height}x${width} is not a multiple of patch size ${p}`);
    }
    return [f32([batch!, frames! * (height! / p) * (width! / p), hidden!])];
  },
};

export const prependTokens: OpDef<"prependTokens"> = {
  family: "embedding",
  arity: [2, 2],
  infer: ([prefix, x]) => {
    const [pb, pn, pc] = expectType("prependTokens prefix", prefix!, "f32", 3);
    const [xb, xn, xc] = expectType("prependTokens tokens", x!, "f32", 3);
    expectDim("prependTokens prefix width", pc!, xc!);
    return [f32([broadcastBatch("prependTokens", pb!, xb!), pn! + xn!, xc!])];
  },
};

export const meanTokens: OpDef<"meanTokens"> = {
  family: "embedding",
  arity: [1, 1],
  infer: ([x], attrs) => {
    const [b, n, c] = expectType("meanTokens input", x!, "f32", 3);
    if (!(Number.isInteger(attrs.skip) && attrs.skip >= 0 && attrs.skip < n!)) {
      throw new ShapeError(`meanTokens skip ${attrs.skip} must leave at least one of ${n} tokens`);
    }
    return [f32([b!, c!])];
  },
};
