import type { Node } from "../../../src/ir/graph.js";
import { nodeLabel } from "../../../src/ir/graph.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import { gatherRows } from "../../../src/runtime/gather.js";
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

/** gather: see src/runtime/gather.ts (and src/ir/ops/types.ts) for the semantics. */
export function gather(node: Node<"gather">, inputs: readonly HostTensor[]): HostTensor[] {
  const x = anyIn(node, inputs, 0);
  const idx = i32In(node, inputs, 1);
  const shape = outShape(node);
  const geometry = { ...node.attrs, xShape: x.shape, idxShape: idx.shape, batch: shape[0]! };
  const where = `reference: ${nodeLabel(node)}`;
  const total = shape.reduce((n, d) => n * d, 1);
  return [
    x.dtype === "f32"
      ? {
          dtype: "f32",
          shape: [...shape],
          data: gatherRows(geometry, x.data, idx.data, new Float32Array(total), where),
        }
      : {
          dtype: "i32",
          shape: [...shape],
          data: gatherRows(geometry, x.data, idx.data, new Int32Array(total), where),
        },
  ];
}
