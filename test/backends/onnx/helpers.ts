import { expect } from "vitest";
import type { Backend } from "../../../backends/backend.js";
import {
  createOnnxBackend,
  type OnnxBackendOptions,
  type OnnxBuildOptions,
} from "../../../backends/onnx/index.js";
import { runReference } from "../../../backends/reference/index.js";
import type { Graph } from "../../../src/ir/graph.js";
import type { HostTensor } from "../../../src/ir/tensor.js";

/**
 * The lowerings: block-sparse attention in sprig's native kernel between ONNX segments
 * (where the kernel is built, else the same as contrib), onnxruntime's MultiHeadAttention
 * in one model, and standard ops only.
 */
export const VARIANTS: readonly [string, OnnxBackendOptions][] = [
  ["native attention", { hostAttention: true }],
  ["contrib", { hostAttention: false }],
  ["portable", { portable: true }],
];

export function backendFor(options: OnnxBackendOptions): Backend {
  return createOnnxBackend(options);
}

/** Largest |a - b| over two tensors of equal size. */
export function maxAbsDiff(a: HostTensor, b: HostTensor): number {
  expect(a.data.length).toBe(b.data.length);
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return worst;
}

/**
 * Runs `graph` on the reference backend and on the onnx backend with `options`; checks
 * every output: same dtype and shape, i32 exactly equal, f32 within `atol`.
 */
export async function expectParity(
  graph: Graph,
  weights: ReadonlyMap<string, HostTensor>,
  inputs: Record<string, HostTensor>,
  options: OnnxBuildOptions,
  atol = 1e-4,
): Promise<Record<string, HostTensor>> {
  const want = runReference(graph, weights, inputs);
  const exe = await createOnnxBackend(options).compile(graph, weights);
  let got: Record<string, HostTensor>;
  try {
    got = await exe.run(inputs);
  } finally {
    exe.dispose();
  }
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const g = got[name]!;
    expect(g.dtype, name).toBe(w.dtype);
    expect(g.shape, name).toEqual(w.shape);
    if (w.dtype === "i32") {
      expect(g.data, name).toBeInstanceOf(Int32Array);
      expect(Array.from(g.data), name).toEqual(Array.from(w.data));
    } else {
      expect(g.data, name).toBeInstanceOf(Float32Array);
      expect(maxAbsDiff(g, w), name).toBeLessThanOrEqual(atol);
    }
  }
  return got;
}
