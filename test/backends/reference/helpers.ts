import { expect } from "vitest";
import type { Graph } from "../../../src/ir/graph.js";
import { f32Tensor, type HostTensor } from "../../../src/ir/tensor.js";
import { runReference } from "../../../backends/reference/index.js";

/** A small deterministic generator (mulberry32) for test data. */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An f32 tensor of uniform values in [-scale, scale). */
export function randomTensor(
  shape: readonly number[],
  seed: number,
  scale = 1,
): HostTensor & { dtype: "f32" } {
  const next = rng(seed);
  const t = f32Tensor(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = (next() * 2 - 1) * scale;
  return t;
}

/** Values of an f32 tensor as float64 numbers, rounded exactly as stored. */
export function values(t: HostTensor | undefined): number[] {
  if (t === undefined) throw new Error("missing tensor");
  return Array.from(t.data);
}

/** Asserts |a - e| <= atol + rtol |e| elementwise, reporting the worst entry. */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol = 0,
): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `entry ${worst}: got ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`,
    );
  }
}

/** Largest |a - b| over two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** Runs a graph with the given weights and inputs on the reference backend. */
export function run(
  graph: Graph,
  weights: Record<string, HostTensor>,
  inputs: Record<string, HostTensor>,
): Record<string, HostTensor> {
  return runReference(graph, new Map(Object.entries(weights)), inputs);
}

/** Rounds a float64 to float32, as storing in a Float32Array does. */
export const f32 = Math.fround;
