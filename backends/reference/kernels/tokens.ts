import type { Node } from "../../../src/ir/graph.js";
import { nodeLabel } from "../../../src/ir/graph.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import { anyIn, f32In, f32Out, i32In, outShape } from "./util.js";

/**
 * tokenScores: with probs [B, H, R, K],
 *   scores[b, j] = Σ_h probs[b, h, row, skip + j] / H   for j < K - skip.
 */
export function tokenScores(
  node: Node<"tokenScores">,
  inputs: readonly HostTensor[],
): HostTensor[] {
  const probs = f32In(node, inputs, 0);
  const [batch, heads, rows, keys] = probs.shape as [number, number, number, number];
  const { row, skip } = node.attrs;
  const len = keys - skip;
  const out = new Float32Array(batch * len);
  const acc = new Float64Array(len);
  for (let b = 0; b < batch; b++) {
    acc.fill(0);
    for (let h = 0; h < heads; h++) {
      const src = ((b * heads + h) * rows + row) * keys + skip;
      for (let j = 0; j < len; j++) acc[j] = acc[j]! + probs.data[src + j]!;
    }
    for (let j = 0; j < len; j++) out[b * len + j] = acc[j]! / heads;
  }
  return [f32Out(outShape(node), out)];
}

/**
 * topK: for each batch row of scores [B, L], the 0-based indices of the k largest scores,
 * returned sorted ascending (i32 [B, k]). Ranking is by score, larger first; exact ties
 * go to the lower index; NaN ranks above every number.
 */
export function topK(node: Node<"topK">, inputs: readonly HostTensor[]): HostTensor[] {
  const scores = f32In(node, inputs, 0);
  const [batch, len] = scores.shape as [number, number];
  const { k } = node.attrs;
  const out = new Int32Array(batch * k);
  const order = new Array<number>(len);
  for (let b = 0; b < batch; b++) {
    const row = scores.data.subarray(b * len, (b + 1) * len);
    for (let i = 0; i < len; i++) order[i] = i;
    order.sort((x, y) => {
      const sx = row[x]!;
      const sy = row[y]!;
      const nx = Number.isNaN(sx);
      const ny = Number.isNaN(sy);
      if (nx !== ny) return nx ? -1 : 1;
      if (!nx && sx !== sy) return sy > sx ? 1 : -1;
      return x - y;
    });
    const kept = order.slice(0, k).sort((x, y) => x - y);
    out.set(kept, b * k);
  }
  return [{ dtype: "i32", shape: [...outShape(node)], data: out }];
}

/**
 * gather: x [.., D, ..] (any dtype) with idx i32 [1|B, k] along axis a ≥ 1:
 *   out[b, .., p, ..] = x[b', .., src(p), ..],  src(p) = p for p < keepPrefix,
 *   src(keepPrefix + i) = keepPrefix + idx[b'', i],
 * with b' = b (or 0 when x has batch 1) and b'' = b (or 0 when idx has batch 1). An index
 * with keepPrefix + idx outside [keepPrefix, D) is a RangeError naming the node.
 */
export function gather(node: Node<"gather">, inputs: readonly HostTensor[]): HostTensor[] {
  const x = anyIn(node, inputs, 0);
  const idx = i32In(node, inputs, 1);
  const { axis, keepPrefix } = node.attrs;
  const shape = outShape(node);
  const xShape = x.shape;
  const xBatch = xShape[0]!;
  const [idxBatch, k] = idx.shape as [number, number];
  const size = xShape[axis]!;
  let outer = 1; // axes 1 .. axis-1
  for (let a = 1; a < axis; a++) outer *= xShape[a]!;
  let inner = 1; // axes after `axis`
  for (let a = axis + 1; a < xShape.length; a++) inner *= xShape[a]!;
  const batch = shape[0]!;
  const kept = keepPrefix + k;
  const total = batch * outer * kept * inner;
  const out = x.dtype === "f32" ? new Float32Array(total) : new Int32Array(total);
  const src = x.data;
  let dst = 0;
  for (let b = 0; b < batch; b++) {
    const xb = xBatch === 1 ? 0 : b;
    const ib = idxBatch === 1 ? 0 : b;
    for (let o = 0; o < outer; o++) {
      const base = (xb * outer + o) * size;
      for (let pos = 0; pos < kept; pos++) {
        let from = pos;
        if (pos >= keepPrefix) {
          const chosen = idx.data[ib * k + pos - keepPrefix]!;
          from = keepPrefix + chosen;
          if (!(chosen >= 0 && from < size)) {
            throw new RangeError(
              `reference: ${nodeLabel(node)}: gather index ${chosen} (batch ${ib}, entry ${pos - keepPrefix}) outside [0, ${size - keepPrefix}) on axis ${axis}`,
            );
          }
        }
        const start = (base + from) * inner;
        out.set(src.subarray(start, start + inner), dst);
        dst += inner;
      }
    }
  }
  const outShapeCopy = [...shape];
  return [
    out instanceof Float32Array
      ? { dtype: "f32", shape: outShapeCopy, data: out }
      : { dtype: "i32", shape: outShapeCopy, data: out },
  ];
}
