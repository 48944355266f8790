import { BackendError } from "../../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../../src/ir/graph.js";
import { formatShape, type HostTensor, numElements } from "../../../src/ir/tensor.js";
import { positionOf } from "../../../src/runtime/inputs.js";
import { anyIn, f32In, f32Out, i32In, outShape } from "./util.js";

/**
 * Text-encoder, fusion and retrieval kernels (semantics in src/ir/ops/types.ts, "text and
 * retrieval"). Sums accumulate in float64 and are rounded once when stored. Indices out of
 * range are a BackendError naming the node: run-time inputs were range-checked already
 * (src/runtime/inputs.ts), so a bad index here came from a constant or another node.
 */

/** Index `flat` of `idx`, which must lie in [0, limit). */
function checkedIndex(
  node: Node,
  idx: HostTensor & { dtype: "i32" },
  flat: number,
  limit: number,
  what: string,
): number {
  const value = idx.data[flat]!;
  if (!(value >= 0 && value < limit)) {
    throw new BackendError(
      `reference: ${nodeLabel(node)}: ${what} ${value} at ${formatShape(positionOf(idx.shape, flat))} outside [0, ${limit})`,
    );
  }
  return value;
}

/** A tensor of `x`'s dtype over `length` fresh elements, filled by `fill(out)`. */
function likeInput(
  x: HostTensor,
  shape: readonly number[],
  fill: <T extends Float32Array | Int32Array>(src: T, out: T) => void,
): HostTensor {
  const length = numElements(shape);
  if (x.dtype === "f32") {
    const out = new Float32Array(length);
    fill(x.data, out);
    return { dtype: "f32", shape: [...shape], data: out };
  }
  const out = new Int32Array(length);
  fill(x.data, out);
  return { dtype: "i32", shape: [...shape], data: out };
}

/** embedding: out[b, l, :] = table[ids[b, l], :], table [V, C]; each row one copy. */
export function embedding(node: Node<"embedding">, inputs: readonly HostTensor[]): HostTensor[] {
  const table = f32In(node, inputs, 0);
  const ids = i32In(node, inputs, 1);
  const [rows, width] = table.shape as [number, number];
  const out = new Float32Array(ids.data.length * width);
  for (let i = 0; i < ids.data.length; i++) {
    const row = checkedIndex(node, ids, i, rows, "id");
    out.set(table.data.subarray(row * width, (row + 1) * width), i * width);
  }
  return [f32Out(outShape(node), out)];
}

/**
 * additiveMask: out = (1 - m) · fill in float32 arithmetic, as PyTorch computes
 * `(1.0 - mask.to(float32)) * fill`: m is rounded to float32, 1 - m is rounded, and the
 * product is rounded when stored (exact for a 0/1 mask and fills -1e4, -1e9).
 */
export function additiveMask(
  node: Node<"additiveMask">,
  inputs: readonly HostTensor[],
): HostTensor[] {
  const mask = i32In(node, inputs, 0).data;
  const fill = Math.fround(node.attrs.fill);
  const out = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = Math.fround(1 - Math.fround(mask[i]!)) * fill;
  return [f32Out(outShape(node), out)];
}

/** l2Normalize over the last axis (size D): y = x / max(√(Σ x²), eps) (PyTorch's F.normalize). */
export function l2Normalize(
  node: Node<"l2Normalize">,
  inputs: readonly HostTensor[],
): HostTensor[] {
  const x = f32In(node, inputs, 0);
  const width = x.shape.at(-1)!;
  const rows = width === 0 ? 0 : x.data.length / width;
  const y = new Float32Array(x.data.length);
  for (let r = 0; r < rows; r++) {
    const off = r * width;
    let squares = 0;
    for (let i = 0; i < width; i++) squares += x.data[off + i]! * x.data[off + i]!;
    const denominator = Math.max(Math.sqrt(squares), node.attrs.eps);
    for (let i = 0; i < width; i++) y[off + i] = x.data[off + i]! / denominator;
  }
  return [f32Out(outShape(node), y)];
}

/** similarity: out[m, n] = scale · Σ_d a[m, d] · b[n, d], a [M, D], b [N, D]. */
export function similarity(node: Node<"similarity">, inputs: readonly HostTensor[]): HostTensor[] {
  const a = f32In(node, inputs, 0);
  const b = f32In(node, inputs, 1);
  const [rows, width] = a.shape as [number, number];
  const columns = b.shape[0]!;
  const out = new Float32Array(rows * columns);
  for (let m = 0; m < rows; m++) {
    for (let n = 0; n < columns; n++) {
      let dot = 0;
      for (let d = 0; d < width; d++) dot += a.data[m * width + d]! * b.data[n * width + d]!;
      out[m * columns + n] = node.attrs.scale * dot;
    }
  }
  return [f32Out(outShape(node), out)];
}

/** selectBatch: out[p, ...] = x[idx[p], ...]; each batch item one copy. */
export function selectBatch(
  node: Node<"selectBatch">,
  inputs: readonly HostTensor[],
): HostTensor[] {
  const x = anyIn(node, inputs, 0);
  const idx = i32In(node, inputs, 1);
  const batch = x.shape[0]!;
  const item = numElements(x.shape.slice(1));
  return [
    likeInput(x, outShape(node), (src, out) => {
      for (let p = 0; p < idx.data.length; p++) {
        const from = checkedIndex(node, idx, p, batch, "batch index");
        out.set(src.subarray(from * item, (from + 1) * item), p * item);
      }
    }),
  ];
}

/**
 * slice along axis a: with O = Π shape[..a), D = shape[a], I = Π shape(a..],
 * out[o, j, i] = x[o, start + j, i] for j < end - start; each (o) one contiguous copy.
 */
export function slice(node: Node<"slice">, inputs: readonly HostTensor[]): HostTensor[] {
  const x = anyIn(node, inputs, 0);
  const { axis, start, end } = node.attrs;
  const outer = numElements(x.shape.slice(0, axis));
  const size = x.shape[axis]!;
  const inner = numElements(x.shape.slice(axis + 1));
  const kept = (end - start) * inner;
  return [
    likeInput(x, outShape(node), (src, out) => {
      for (let o = 0; o < outer; o++) {
        const from = (o * size + start) * inner;
        out.set(src.subarray(from, from + kept), o * kept);
      }
    }),
  ];
}
