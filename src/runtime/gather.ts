/**
 * The gather op on host arrays, shared by every backend that runs it on the host (the
 * reference kernel, tfjs's "host" strategy). Semantics as in src/ir/ops/types.ts: for x
 * [.., D, ..] and idx i32 [1|B, k] along axis a ≥ 1,
 *   out[b, .., p, ..] = x[b', .., src(p), ..],  src(p) = p for p < keepPrefix,
 *   src(keepPrefix + i) = keepPrefix + idx[b'', i],
 * with b' = b (or 0 when x has batch 1) and b'' = b (or 0 when idx has batch 1). Every
 * selected row of the axes after `a` is one contiguous copy.
 */
export interface GatherGeometry {
  readonly xShape: readonly number[];
  /** [1|B, k]. */
  readonly idxShape: readonly number[];
  readonly axis: number;
  readonly keepPrefix: number;
  /** Batch of the output (B). */
  readonly batch: number;
}

/**
 * Fills `out` (batch · outer · (keepPrefix + k) · inner elements) from `src`. An index
 * outside [0, D - keepPrefix) is a RangeError that starts with `where` (backend and node).
 */
export function gatherRows<T extends Float32Array | Int32Array>(
  geometry: GatherGeometry,
  src: T,
  idx: Int32Array,
  out: T,
  where: string,
): T {
  const { xShape, idxShape, axis, keepPrefix, batch } = geometry;
  const [idxBatch, k] = idxShape as [number, number];
  const xBatch = xShape[0]!;
  const size = xShape[axis]!;
  let outer = 1; // axes 1 .. axis-1
  for (let a = 1; a < axis; a++) outer *= xShape[a]!;
  let inner = 1; // axes after `axis`
  for (let a = axis + 1; a < xShape.length; a++) inner *= xShape[a]!;
  const kept = keepPrefix + k;
  let dst = 0;
  for (let b = 0; b < batch; b++) {
    const xb = xBatch === 1 ? 0 : b;
    const ib = idxBatch === 1 ? 0 : b;
    for (let o = 0; o < outer; o++) {
      const base = (xb * outer + o) * size;
      for (let pos = 0; pos < kept; pos++) {
        let from = pos;
        if (pos >= keepPrefix) {
          const chosen = idx[ib * k + pos - keepPrefix]!;
          from = keepPrefix + chosen;
          if (!(chosen >= 0 && from < size)) {
            throw new RangeError(
              `${where}: gather index ${chosen} (batch ${ib}, entry ${pos - keepPrefix}) outside [0, ${size - keepPrefix}) on axis ${axis}`,
            );
          }
        }
        const start = (base + from) * inner;
        out.set(src.subarray(start, start + inner), dst);
        dst += inner;
      }
    }
  }
  return out;
}
