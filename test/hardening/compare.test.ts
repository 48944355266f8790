/**
 * verify's tensor comparison with non-finite values (src/conformance/compare.ts): NaN or
 * ±Infinity on either side is a mismatch unless both sides hold the same non-finite value
 * at that position.
 */
import { describe, expect, it } from "vitest";
import { compareTensors } from "../../src/conformance/compare.js";
import { f32Tensor } from "../../src/ir/tensor.js";

const NAN = Number.NaN;
const INF = Number.POSITIVE_INFINITY;
const tolerance = { atol: 1e-4, rtol: 1e-3 };
const check = (got: number[], want: number[], tol: typeof tolerance | "exact" = tolerance) =>
  compareTensors(
    "t",
    f32Tensor([got.length], Float32Array.from(got)),
    f32Tensor([want.length], Float32Array.from(want)),
    tol,
  );

describe("compareTensors with NaN and infinities", () => {
  it.each([
    ["-Inf expected, finite got", [1, 0.5], [1, -INF]],
    ["+Inf expected, finite got", [1, 1e30], [1, INF]],
    ["finite expected, -Inf got", [-INF, 2], [3, 2]],
    ["NaN expected, finite got", [0, 2], [NAN, 2]],
    ["finite expected, NaN got", [NAN, 2], [0, 2]],
    ["+Inf expected, -Inf got", [-INF], [INF]],
    ["NaN expected, Inf got", [INF], [NAN]],
    ["Inf expected, NaN got", [NAN], [INF]],
  ])("%s is a mismatch", (_label, got, want) => {
    const result = check(got, want);
    expect(result.passed).toBe(false);
    expect(result.worst).toBe(INF);
    expect(result.detail).toContain("1 of");
    expect(result.detail).toContain("NaN or Infinity");
    expect(check(got, want, "exact").passed).toBe(false);
  });

  it.each([
    ["NaN and NaN", [NAN, 1], [NAN, 1]],
    ["+Inf and +Inf", [INF, 1], [INF, 1]],
    ["-Inf and -Inf", [-INF, 1], [-INF, 1.0001]],
  ])("%s at the same position match", (_label, got, want) => {
    expect(check(got, want).passed).toBe(true);
  });

  it("the same non-finite value at another position is still a mismatch", () => {
    const result = check([-INF, 0], [0, -INF]);
    expect(result.passed).toBe(false);
    expect(result.detail).toMatch(/^2 of 2 elements off/);
  });

  it("finite values keep the tolerance rule |got - want| <= atol + rtol |want|", () => {
    // allowed at want = 100: 1e-4 + 0.1 = 0.1001
    expect(check([100.1], [100]).passed).toBe(true);
    expect(check([100.11], [100]).passed).toBe(false);
  });
});
