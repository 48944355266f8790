/**
 * Small models, seeded random data and naive helpers shared by the model, pass and property
 * tests. A small model: hidden 32, 4 heads, 2 frames of 32x32 pixels with patch 8, so
 * 2 * 4 * 4 = 32 local tokens and N = 33 with the CLS token.
 */
import type { Graph } from "../../src/ir/graph.js";
import { f32Tensor, type HostTensor } from "../../src/ir/tensor.js";
import type { BeitConfig, SparsityConfig, VisionModelSpec } from "../../src/models/config.js";

export const SMALL_MODEL: BeitConfig = {
  hiddenSize: 32,
  numHeads: 4,
  numLayers: 3,
  intermediateSize: 64,
  layerNormEps: 1e-6,
  layerScale: true,
  relPosBias: true,
  numClsTokens: 1,
  imageSize: 32,
  patchSize: 8,
  channels: 3,
};

export const NO_SPARSITY: SparsityConfig = { attention: null, tokens: null, tokenOrder: "none" };

export function smallSpec(
  overrides: {
    model?: Partial<BeitConfig>;
    frames?: number;
    batch?: number;
    sparsity?: SparsityConfig;
  } = {},
): VisionModelSpec {
  return {
    model: { ...SMALL_MODEL, ...overrides.model },
    frames: overrides.frames ?? 2,
    batch: overrides.batch ?? 1,
    sparsity: overrides.sparsity ?? NO_SPARSITY,
  };
}

/** mulberry32: uniform floats in [0, 1). */
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

/** 0 .. n - 1 in a seeded random order (Fisher-Yates, drawing from `next`). */
export function permutation(n: number, next: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** f32 tensor with entries uniform in [offset - scale, offset + scale). */
export function randomTensor(
  shape: readonly number[],
  seed: number,
  scale = 1,
  offset = 0,
): HostTensor & { dtype: "f32" } {
  const next = rng(seed);
  const t = f32Tensor(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = offset + (next() * 2 - 1) * scale;
  return t;
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/**
 * Random weights for every weight node of `graph`, keyed by name (so two graphs built from
 * one spec get the same values). LayerNorm scales near 1, layer scales near 0.5, linear
 * weights large enough that attention is far from uniform.
 */
export function randomWeights(graph: Graph, seed: number): Map<string, HostTensor> {
  const weights = new Map<string, HostTensor>();
  for (const node of graph.nodes) {
    if (node.op !== "weight") continue;
    const { name, type } = node.attrs;
    const s = (seed * 7919 + hash(name)) >>> 0;
    let t: HostTensor;
    if (/(layernorm|LayerNorm)[^.]*\.weight$/.test(name)) t = randomTensor(type.shape, s, 0.2, 1);
    else if (/lambda_\d$/.test(name)) t = randomTensor(type.shape, s, 0.2, 0.5);
    else if (/bias_table$/.test(name)) t = randomTensor(type.shape, s, 1);
    else if (/\.bias$/.test(name)) t = randomTensor(type.shape, s, 0.1);
    else {
      const fanIn = type.shape.slice(1).reduce((a, b) => a * b, 1) || 1;
      t = randomTensor(type.shape, s, 1.5 / Math.sqrt(fanIn));
    }
    weights.set(name, t);
  }
  return weights;
}

/** Pixels for a vision spec. */
export function randomPixels(spec: VisionModelSpec, seed: number): HostTensor {
  const { batch, frames, model } = spec;
  return randomTensor([batch, frames, model.channels, model.imageSize, model.imageSize], seed);
}

/** Largest |a - b|; NaN anywhere gives Infinity. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return worst;
}
