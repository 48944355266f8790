import type { AttentionPattern, PaddingMode } from "../pattern.js";
import type { HostTensor, TensorType } from "../tensor.js";

/**
 * Every op kind and its attributes, in one table. Adding a kind here makes `tsc` fail until
 * its shape rule (ops/index.ts), cost rule (src/cost), reference kernel and every backend's
 * lowering table handle it: those are all mapped types over `OpKind`.
 *
 * Shapes below use B = batch, N = tokens (G global + L local), C = hidden, H = heads.
 */
export interface OpAttrs {
  // ---- sources ---------------------------------------------------------------------------
  /** A run-time input, bound by name when the compiled graph runs. */
  input: { readonly name: string; readonly type: TensorType };
  /** A parameter, named by its key in the reference model's state_dict. */
  weight: { readonly name: string; readonly type: TensorType };
  /** A compile-time constant (token orders, index tables). */
  constant: { readonly name: string; readonly value: HostTensor };

  // ---- dense math ------------------------------------------------------------------------
  /** y = x Wᵀ + b over the last axis; x [..., in], W [out, in], optional b [out]. */
  linear: Record<string, never>;
  /** Elementwise a + b with NumPy broadcasting. */
  add: Record<string, never>;
  /** Elementwise a * b with NumPy broadcasting (layer scale, masks). */
  mul: Record<string, never>;
  /** GELU, exact form: x * (1 + erf(x / sqrt 2)) / 2. */
  gelu: Record<string, never>;
  /** (x - mean) / sqrt(var + eps) * gamma + beta over the last axis (biased variance). */
  layerNorm: { readonly eps: number };
  /** Same elements, new static shape. */
  reshape: { readonly shape: readonly number[] };

  // ---- embedding and pooling ---------------------------------------------------------------
  /**
   * Video patch embedding: a Conv2d with kernel = stride = patch applied to every frame;
   * pixels [B, T, Cin, Hpx, Wpx] -> [B, T * (Hpx/p) * (Wpx/p), C], patches row-major per
   * frame, frames in order.
   */
  patchEmbed: { readonly patchSize: number };
  /** [prefix (broadcast over batch), x] along the token axis: [1|B, P, C] + [B, N, C] -> [B, P+N, C]. */
  prependTokens: Record<string, never>;
  /** Mean over tokens skip..N-1: [B, N, C] -> [B, C] (BEiT's mean-pooling head). */
  meanTokens: { readonly skip: number };

  // ---- attention -----------------------------------------------------------------------------
  /**
   * Dense multi-head attention, softmax(q kᵀ / sqrt(d) + bias + mask) v per head.
   * Inputs: q [B, Nq, C], k [B, Nk, C], v [B, Nk, C], then, in this order and only when
   * enabled by the attributes: mask [B, Nk] or [B, Nq, Nk] (additive, per key or per pair),
   * relative-position bias table [(2T-1)(2H-1)(2W-1)+3, H] and token index i32 [1|B, Nq - 1]
   * (original positions of the local tokens). Outputs: context [B, Nq, C] and probabilities [B, H, R, Nk] with R =
   * numCls rows ("cls") or all Nq rows ("all").
   */
  attention: {
    readonly heads: number;
    readonly numCls: number;
    readonly probs: "cls" | "all";
    readonly mask: boolean;
    readonly relPosBias: RelPosBiasAttrs | null;
  };
  /**
   * Block-sparse self-attention over the pattern's token graph (see pattern.ts): global
   * queries are dense; local query block m reads the global keys plus its layout row.
   * Inputs: q, k, v [B, N, C], then table and token index when relPosBias is set.
   * Outputs: context [B, N, C] and the global rows' probabilities [B, H, G, N].
   */
  blockSparseAttention: {
    readonly heads: number;
    readonly pattern: AttentionPattern;
    readonly padding: PaddingMode;
    readonly relPosBias: RelPosBiasAttrs | null;
  };

  // ---- text and retrieval ---------------------------------------------------------------------
  /**
   * Rows of a table by index (BERT's word, position and token-type embeddings):
   * table [V, C], ids i32 [B, L] -> [B, L, C], out[b, l] = table[ids[b, l]]. An id outside
   * [0, V) is an error: run-time inputs are range-checked before any backend runs.
   */
  embedding: Record<string, never>;
  /**
   * Additive attention mask from a 1/0 token mask: m i32 [B, L] -> f32 [B, L],
   * out = (1 - m) * fill (BERT uses fill -10000 for text, -1e9 for visual tokens).
   */
  additiveMask: { readonly fill: number };
  /** x / max(||x||₂, eps) over the last axis (PyTorch's F.normalize). */
  l2Normalize: { readonly eps: number };
  /** Scaled dot products of every row pair: a [M, D], b [N, D] -> [M, N] = scale · a bᵀ. */
  similarity: { readonly scale: number };
  /** Batch items by index: x [B, ...], idx i32 [P] -> [P, ...], out[p] = x[idx[p]]. */
  selectBatch: Record<string, never>;
  /** Entries start..end-1 along `axis`: [.., D, ..] -> [.., end - start, ..]. */
  slice: { readonly axis: number; readonly start: number; readonly end: number };

  // ---- reduced precision (quantize-linear; math in quantized.ts) ---------------------------------
  /**
   * Per-output-channel scales of a weight for symmetric int8: W f32 [out, in] -> f32 [out],
   * s[o] = max_i |W[o, i]| / 127 (1 for an all-zero row). It reads only a weight, so backends
   * compute it once, when the executable is created; it is a node so that the scales are a
   * tensor of the printed graph, not a detail hidden in a backend.
   */
  weightScales: Record<string, never>;
  /**
   * y = x Wᵀ + b in 8-bit integers, as onnxruntime's dynamic quantisation computes it.
   * Inputs x f32 [..., in], W f32 [out, in], s f32 [out] (weightScales of W), optional
   * b f32 [out]; rne = round half to even, float32 arithmetic:
   *   weights      q[o, i] = clamp(rne(W[o, i] / s[o]), -127, 127)     (symmetric, per channel)
   *   activations  lo = min(0, min x), hi = max(0, max x), sx = (hi - lo) / 255 (1 if hi = lo),
   *                zx = rne(clamp(-lo / sx, 0, 255)), u = clamp(rne(x / sx) + zx, 0, 255)
   *                (asymmetric uint8, one scale for the whole tensor, found at run time)
   *   output       y[.., o] = f32(Σ_i (u[.., i] - zx) · q[o, i]) · (sx · s[o]) + b[o]
   * The integer sums are exact. Not per-token: the activation scale spans every row.
   */
  quantizedLinear: Record<string, never>;

  // ---- token selection (node sparsity) ---------------------------------------------------------
  /** Mean over heads of probs[:, :, row, skip:]: [B, H, R, K] -> [B, K - skip]. */
  tokenScores: { readonly row: number; readonly skip: number };
  /** Indices (i32) of the k largest scores per batch row, sorted ascending: [B, L] -> [B, k]. */
  topK: { readonly k: number };
  /**
   * Keeps the first keepPrefix entries along `axis`, then entries keepPrefix + idx[b, i]:
   * x [.., D, ..] with idx i32 [B|1, k] -> [.., keepPrefix + k, ..]. Batch (axis 0) of x
   * and idx broadcast from 1.
   */
  gather: { readonly axis: number; readonly keepPrefix: number };
}

/** 3-D relative position bias over a (T, H, W) token window with one CLS token. */
export interface RelPosBiasAttrs {
  readonly window: readonly [number, number, number];
}

export type OpKind = keyof OpAttrs;

export type OpFamily = "source" | "dense" | "embedding" | "attention" | "tokens";
