/**
 * Checkpoints across clip lengths: adapting BEiT relative position bias tables to the window
 * of the compiled model, with the arithmetic of the reference's
 * `interpolate_pos_relative_bias_beit_3d` (models/utils.py), which SViTT uses both to expand
 * a 4-frame checkpoint to 8 or 16 frames (tasks/shared_utils.py, src_t_size = 2·num_frames − 1
 * from the checkpoint's config) and to start from an image BEiT checkpoint
 * (models/model_retrieval_base.py, src_t_size = 1).
 *
 * Table layout (src/ir/relpos.ts): rows ((Δt+T−1)(2H−1) + (Δh+H−1))(2W−1) + (Δw+W−1) for the
 * P = (2T−1)(2H−1)(2W−1) local offsets, then cls→token (P), token→cls (P+1), cls→cls (P+2);
 * one column per head. An image BEiT table (HF BeitRelativePositionBias) has the same layout
 * with T = 1: (2H−1)(2W−1) rows, then the same three CLS rows.
 *
 * What the reference does, per table whose row count differs from the new model's:
 *  1. spatial (only when the source relative size 2H−1 differs from the target's, and only for
 *     2-D tables): BEiT's geometric-progression warp of the source offsets, then
 *     scipy.interpolate.interp2d(kind="cubic") per head, evaluated at the integer target offsets;
 *  2. temporal: a 2-D table is repeated over every Δt (einops 's d -> (t s) d', so the image bias
 *     applies to every pair of frames, not only Δt = 0); a 3-D table is resampled along the Δt
 *     axis with F.interpolate(mode="nearest") from 2T−1 to 2T′−1 rows per spatial offset and head;
 *  3. the three CLS rows are carried over unchanged;
 *  4. every relative_position_index buffer is popped (it is derived from the window).
 */
import { ConfigError, WeightError } from "../../ir/errors.js";
import { type RelPosWindow, relPosPairs, relPosTableRows } from "../../ir/relpos.js";
import { f32Tensor, formatShape, type HostTensor } from "../../ir/tensor.js";

/** Spatial grid (H, W) of patches. */
export type SpatialGrid = readonly [number, number];

/** The three CLS rows that follow the local offsets in every table. */
const CLS_ROWS = 3;

const TABLE_SUFFIX = "relative_position_bias_table";
const INDEX_SUFFIX = "relative_position_index";
const DEFAULT_LABEL = "relative position bias table";

type F32Tensor = HostTensor & { dtype: "f32" };

function tableError(label: string, shape: readonly number[], detail: string): WeightError {
  return new WeightError(`"${label}" f32${formatShape(shape)}: ${detail}`);
}

function sameWindow(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function spatialPairs(spatial: SpatialGrid): number {
  return (2 * spatial[0] - 1) * (2 * spatial[1] - 1);
}

/** Checks a table is f32 [expectedRows, heads] and returns it typed, with its head count. */
function checkTable(
  table: HostTensor,
  expectedRows: number,
  what: string,
  label: string,
): { table: F32Tensor; heads: number } {
  if (table.dtype !== "f32" || table.shape.length !== 2) {
    throw new WeightError(
      `"${label}" ${table.dtype}${formatShape(table.shape)}: expected an f32 [rows, heads] table`,
    );
  }
  const [rows, heads] = table.shape as [number, number];
  if (rows !== expectedRows) {
    throw tableError(
      label,
      table.shape,
      `${what} needs ${expectedRows} rows (f32${formatShape([expectedRows, heads])}), got ${rows}`,
    );
  }
  return { table, heads };
}

// ---- inferring a table's window from its row count ---------------------------------------------

/**
 * The window (T, H, W) of a table with `rows` rows on the spatial grid (H, W):
 * rows = (2T−1)(2H−1)(2W−1) + 3, so 2T−1 = (rows − 3) / ((2H−1)(2W−1)) must be an odd
 * positive integer. An image table on the same grid reads as T = 1 (the layouts coincide).
 */
export function windowOfTable(
  rows: number,
  spatial: SpatialGrid,
  label: string = DEFAULT_LABEL,
): RelPosWindow {
  const perFrame = spatialPairs(spatial);
  const offsets = (rows - CLS_ROWS) / perFrame;
  if (!(Number.isInteger(offsets) && offsets >= 1 && offsets % 2 === 1)) {
    throw new WeightError(
      `"${label}": ${rows} rows fit no window on the ${spatial[0]}x${spatial[1]} grid ` +
        `(need (2T-1)·${perFrame} + ${CLS_ROWS} rows for some T >= 1)`,
    );
  }
  return [(offsets + 1) / 2, spatial[0], spatial[1]];
}

/**
 * The square grid (H, H) of a table whose local rows form a square of odd side 2H−1, as the
 * reference assumes when the grid differs (src_size = int(sqrt(rows − 3)) on an image table).
 */
export function squareGridOfTable(localRows: number): SpatialGrid | null {
  const side = Math.round(Math.sqrt(localRows));
  if (side * side !== localRows || side % 2 !== 1) return null;
  return [(side + 1) / 2, (side + 1) / 2];
}

// ---- temporal resampling: torch nearest ---------------------------------------------------------

/**
 * Source index of output `index` in torch's legacy "nearest" mode (F.interpolate with a size
 * and no scale_factor; aten/src/ATen/native/UpSample.h nearest_idx): equal sizes copy,
 * doubling takes index >> 1, otherwise
 *   scale = float32(inSize / outSize),  src = min(floor(float32(index · scale)), inSize − 1).
 * The scale is float32, so src can fall one below the exact floor(index·inSize/outSize) when
 * the exact product is an integer (e.g. 21 -> 69 rows, index 23 takes 6, not 7). align_corners
 * does not apply to "nearest".
 */
export function torchNearestSourceIndex(index: number, inSize: number, outSize: number): number {
  if (outSize === inSize) return index;
  if (outSize === 2 * inSize) return index >> 1;
  // float(in) / out in C++. Rounding the double quotient to float32 gives the float32 quotient
  // (double rounding is harmless for division since 53 >= 2·24 + 2).
  const scale = Math.fround(inSize / outSize);
  // Both factors are float32 values, so the double product is exact and fround rounds it once,
  // exactly as a float32 multiply.
  return Math.min(Math.floor(Math.fround(index * scale)), inSize - 1);
}

/** Copies the three CLS rows (last rows of `from`) to the last rows of `to`. */
function copyClsRows(from: Float32Array, to: Float32Array, heads: number): void {
  to.set(from.subarray(from.length - CLS_ROWS * heads), to.length - CLS_ROWS * heads);
}

/**
 * Resamples the Δt axis of a table with spatial offsets S = (2H−1)(2W−1): the reference
 * rearranges '(t s) d -> s d t', interpolates t from 2T−1 to 2T′−1 in "nearest" mode and
 * rearranges back, so new row t′·S + s is old row src(t′)·S + s for every head.
 */
function resampleDeltaT(
  table: F32Tensor,
  heads: number,
  spatialOffsets: number,
  fromDt: number,
  toDt: number,
): F32Tensor {
  const rows = toDt * spatialOffsets + CLS_ROWS;
  const out = new Float32Array(rows * heads);
  const sliceLength = spatialOffsets * heads;
  for (let t = 0; t < toDt; t++) {
    const source = torchNearestSourceIndex(t, fromDt, toDt);
    out.set(table.data.subarray(source * sliceLength, (source + 1) * sliceLength), t * sliceLength);
  }
  copyClsRows(table.data, out, heads);
  return f32Tensor([rows, heads], out);
}

// ---- spatial interpolation: BEiT's geometric warp + scipy interp2d(kind="cubic") ---------------

/**
 * Source and target offset positions of the reference's spatial interpolation for relative
 * sizes srcSize = 2H−1 and dstSize = 2H′−1 (float64, as in Python). q in [1.01, 1.5] is found by
 * bisection so that 1 + q + … + q^(n−1) ≈ dstSize // 2 with n = srcSize // 2; the source offsets
 * are 0, ±1, ±(1+q), ±(1+q+q²), …; the target offsets are the integers −t..t, t = dstSize // 2.
 * When even q = 1.5 cannot stretch the source that far, the outer targets lie beyond the last
 * source offset (the spline evaluation then clamps them, see splineValue).
 */
export function beitWarpedOffsets(
  srcSize: number,
  dstSize: number,
): { source: number[]; target: number[] } {
  const n = Math.floor(srcSize / 2);
  const half = Math.floor(dstSize / 2);
  const geometricSum = (r: number) => (1 * (1 - r ** n)) / (1 - r);
  let left = 1.01;
  let right = 1.5;
  let q = left;
  while (right - left > 1e-6) {
    q = (left + right) / 2;
    if (geometricSum(q) > half) right = q;
    else left = q;
  }
  const positive: number[] = [];
  let cur = 1;
  for (let i = 0; i < n; i++) {
    positive.push(cur);
    cur += q ** (i + 1);
  }
  const source = [...positive.map((d) => -d).reverse(), 0, ...positive];
  const target: number[] = [];
  for (let d = -half; d <= half; d++) target.push(d);
  return { source, target };
}

/** Solves the dense system A·m = b by Gaussian elimination with partial pivoting (float64). */
function solveDense(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    }
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    const p = m[col]!;
    for (let r = col + 1; r < n; r++) {
      const row = m[r]!;
      const f = row[col]! / p[col]!;
      for (let c = col; c <= n; c++) row[c]! -= f * p[c]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    const row = m[r]!;
    let s = row[n]!;
    for (let c = r + 1; c < n; c++) s -= row[c]! * x[c]!;
    x[r] = s / row[r]!;
  }
  return x;
}

/**
 * Second derivatives M of the not-a-knot cubic spline through (x_i, y_i), n ≥ 4:
 *   interior i:  h_{i−1}M_{i−1} + 2(h_{i−1}+h_i)M_i + h_iM_{i+1} = 6[(y_{i+1}−y_i)/h_i − (y_i−y_{i−1})/h_{i−1}]
 *   not-a-knot at x_1 and x_{n−2} (third derivative continuous there):
 *     h_1M_0 − (h_0+h_1)M_1 + h_0M_2 = 0,  h_{n−2}M_{n−3} − (h_{n−3}+h_{n−2})M_{n−2} + h_{n−3}M_{n−1} = 0.
 * This is the spline scipy's interp2d(kind="cubic") fits on a grid: FITPACK regrid with s = 0
 * places the interior knots at x_2 … x_{n−3}, i.e. no knot at x_1 and x_{n−2}.
 */
function notAKnotSecondDerivatives(x: readonly number[], y: readonly number[]): number[] {
  const n = x.length;
  const h = (i: number) => x[i + 1]! - x[i]!;
  const a: number[][] = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const b = new Array<number>(n).fill(0);
  a[0]![0] = h(1);
  a[0]![1] = -(h(0) + h(1));
  a[0]![2] = h(0);
  for (let i = 1; i < n - 1; i++) {
    a[i]![i - 1] = h(i - 1);
    a[i]![i] = 2 * (h(i - 1) + h(i));
    a[i]![i + 1] = h(i);
    b[i] = 6 * ((y[i + 1]! - y[i]!) / h(i) - (y[i]! - y[i - 1]!) / h(i - 1));
  }
  a[n - 1]![n - 3] = h(n - 2);
  a[n - 1]![n - 2] = -(h(n - 3) + h(n - 2));
  a[n - 1]![n - 1] = h(n - 3);
  return solveDense(a, b);
}

/** Value of the spline (x, y, M) at p, with p clamped to [x_0, x_{n−1}] as FITPACK's fpbisp does. */
function splineValue(x: readonly number[], y: readonly number[], m: number[], p: number): number {
  const n = x.length;
  const at = Math.min(Math.max(p, x[0]!), x[n - 1]!);
  let k = 0;
  while (k < n - 2 && at > x[k + 1]!) k++;
  const h = x[k + 1]! - x[k]!;
  const left = x[k + 1]! - at;
  const right = at - x[k]!;
  return (
    (m[k]! * left ** 3 + m[k + 1]! * right ** 3) / (6 * h) +
    (y[k]! / h - (m[k]! * h) / 6) * left +
    (y[k + 1]! / h - (m[k + 1]! * h) / 6) * right
  );
}

/**
 * The spline is linear in the data, so interpolation from `source` to `target` points is a
 * matrix: weights[j][i] = value at target j of the spline through the unit vector e_i.
 */
function splineWeights(source: readonly number[], target: readonly number[]): number[][] {
  const n = source.length;
  const weights = target.map(() => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    const unit = source.map((_, j) => (j === i ? 1 : 0));
    const m = notAKnotSecondDerivatives(source, unit);
    target.forEach((p, j) => {
      weights[j]![i] = splineValue(source, unit, m, p);
    });
  }
  return weights;
}

/**
 * Spatial interpolation of a square image table from relative size srcSize to dstSize (both
 * 2H−1, odd). Per head the local rows form Z (Δh rows, Δw columns); a bicubic tensor spline on a
 * grid is the 1-D spline applied along each axis, and both axes use the same offsets, so the
 * result is R = W·Z·Wᵀ (float64), stored as float32 as torch.Tensor(f(dx, dy)) does.
 */
function spatialBicubic(table: F32Tensor, heads: number, srcSize: number, dstSize: number) {
  const { source, target } = beitWarpedOffsets(srcSize, dstSize);
  const w = splineWeights(source, target);
  const rows = dstSize * dstSize + CLS_ROWS;
  const out = new Float32Array(rows * heads);
  const z = table.data;
  for (let head = 0; head < heads; head++) {
    // Along Δw first: zw[i][b] = Σ_j Z[i][j]·W[b][j].
    const zw = Array.from({ length: srcSize }, (_, i) =>
      w.map((wb) => wb.reduce((s, wbj, j) => s + z[(i * srcSize + j) * heads + head]! * wbj, 0)),
    );
    for (let a = 0; a < dstSize; a++) {
      for (let b = 0; b < dstSize; b++) {
        const value = w[a]!.reduce((s, wai, i) => s + wai * zw[i]![b]!, 0);
        out[(a * dstSize + b) * heads + head] = value;
      }
    }
  }
  copyClsRows(table.data, out, heads);
  return f32Tensor([rows, heads], out);
}

// ---- the two mappings ---------------------------------------------------------------------------

/**
 * Maps an image BEiT table (2-D, (2H−1)(2W−1) + 3 rows on the grid fromSpatial) to the 3-D
 * table of toWindow, as the reference does for src_t_size = 1:
 *  - if the grid differs, the reference's spatial interpolation (square grids only, source side
 *    2H−1 ≥ 5 because the cubic fit needs 4 points per axis);
 *  - then the local rows are repeated for every Δt in −(T−1)..T−1 (new row t·S + s = row s), so
 *    the image bias is broadcast over Δt, not placed at Δt = 0;
 *  - the CLS rows are carried over.
 */
export function relPosTableFrom2d(
  table2d: HostTensor,
  fromSpatial: SpatialGrid,
  toWindow: RelPosWindow,
  label: string = DEFAULT_LABEL,
): HostTensor {
  const checked = checkTable(
    table2d,
    spatialPairs(fromSpatial) + CLS_ROWS,
    `an image table on the ${fromSpatial[0]}x${fromSpatial[1]} grid`,
    label,
  );
  const { heads } = checked;
  const toSpatial: SpatialGrid = [toWindow[1], toWindow[2]];
  let table = checked.table;
  if (!sameWindow(fromSpatial, toSpatial)) {
    table = interpolateSpatially(table, heads, fromSpatial, toSpatial, label);
  }
  const dtRows = 2 * toWindow[0] - 1;
  if (dtRows === 1) return table;
  return resampleDeltaT(table, heads, spatialPairs(toSpatial), 1, dtRows);
}

function interpolateSpatially(
  table: F32Tensor,
  heads: number,
  from: SpatialGrid,
  to: SpatialGrid,
  label: string,
): F32Tensor {
  if (from[0] !== from[1] || to[0] !== to[1]) {
    throw tableError(
      label,
      table.shape,
      `the reference interpolates only square grids, not ${from[0]}x${from[1]} -> ${to[0]}x${to[1]}`,
    );
  }
  if (from[0] < 3) {
    throw tableError(
      label,
      table.shape,
      `cubic interpolation needs a source grid of at least 3x3 (5 offsets per axis), got ${from[0]}x${from[1]}`,
    );
  }
  return spatialBicubic(table, heads, 2 * from[0] - 1, 2 * to[0] - 1);
}

/**
 * Maps a 3-D table of fromWindow to toWindow with the reference's arithmetic: the Δt axis
 * (2T−1 rows per spatial offset and head) is resampled to 2T′−1 rows in torch "nearest" mode
 * (torchNearestSourceIndex), the CLS rows are carried over. A table already of toWindow comes
 * back as is. A T = 1 table is an image table (same layout) and follows relPosTableFrom2d,
 * including spatial interpolation; for T > 1 the reference cannot change the grid (its spatial
 * step views each head as a (2H−1)² square), so that is an error here.
 */
export function interpolateRelPosTable3d(
  table: HostTensor,
  fromWindow: RelPosWindow,
  toWindow: RelPosWindow,
  label: string = DEFAULT_LABEL,
): HostTensor {
  const checked = checkTable(
    table,
    relPosTableRows(fromWindow),
    `window ${formatShape(fromWindow)}`,
    label,
  );
  if (sameWindow(fromWindow, toWindow)) return table;
  const fromSpatial: SpatialGrid = [fromWindow[1], fromWindow[2]];
  if (fromWindow[0] === 1) return relPosTableFrom2d(table, fromSpatial, toWindow, label);
  if (!sameWindow(fromSpatial, [toWindow[1], toWindow[2]])) {
    throw tableError(
      label,
      table.shape,
      `window ${formatShape(fromWindow)} -> ${formatShape(toWindow)} changes the grid of a ` +
        `multi-frame table, which the reference cannot do (target f32${formatShape([relPosTableRows(toWindow), checked.heads])})`,
    );
  }
  const spatialOffsets = relPosPairs(fromWindow) / (2 * fromWindow[0] - 1);
  return resampleDeltaT(
    checked.table,
    checked.heads,
    spatialOffsets,
    2 * fromWindow[0] - 1,
    2 * toWindow[0] - 1,
  );
}

// ---- a whole state_dict -------------------------------------------------------------------------

/** What happened to one checkpoint entry. */
export type RelPosAdaptation =
  | "temporal-nearest"
  | "repeat-over-dt"
  | "spatial-bicubic"
  | "spatial-bicubic+repeat-over-dt"
  | "dropped-index";

export interface RelPosAdaptEntry {
  readonly key: string;
  readonly from: readonly number[];
  /** The new shape; null for a dropped entry. */
  readonly to: readonly number[] | null;
  readonly how: RelPosAdaptation;
  /** e.g. "window [4,14,14] -> [8,14,14]". */
  readonly detail: string;
}

export interface RelPosTarget {
  /** The compiled model's window (frames, H, W). */
  readonly window: RelPosWindow;
  readonly heads: number;
}

export interface RelPosAdaptOptions {
  /**
   * Frames the checkpoint was trained with (the reference reads
   * checkpoint['config']['video_input']['num_frames']; 1 for an image BEiT checkpoint). Without
   * it the source window is inferred from the row count, first on the target's grid, then as a
   * square image table. Row counts alone can be ambiguous ((2T−1)(2H−1)² may be a square), so
   * pass it when known.
   */
  readonly sourceFrames?: number;
}

/**
 * The source window of one table. With sourceFrames F: the local rows (rows − 3)/(2F−1) on the
 * target's grid, else on a square grid. Without: a window on the target's grid (windowOfTable),
 * else a square image table (T = 1).
 */
function sourceWindowOf(
  key: string,
  table: HostTensor,
  target: RelPosTarget,
  options: RelPosAdaptOptions,
): RelPosWindow {
  const rows = table.shape[0]!;
  const grid: SpatialGrid = [target.window[1], target.window[2]];
  const frames = options.sourceFrames ?? null;
  const perFrame = (rows - CLS_ROWS) / (frames === null ? 1 : 2 * frames - 1);
  if (frames === null && (perFrame / spatialPairs(grid)) % 2 === 1) {
    return windowOfTable(rows, grid, key);
  }
  const square = perFrame === spatialPairs(grid) ? grid : squareGridOfTable(perFrame);
  if (square === null) {
    const window = frames === null ? "window" : `${frames}-frame window`;
    throw tableError(
      key,
      table.shape,
      `${rows} rows fit no ${window} on the ${grid[0]}x${grid[1]} grid nor on a square grid`,
    );
  }
  return [frames ?? 1, square[0], square[1]];
}

function checkSourceFrames(options: RelPosAdaptOptions): void {
  const frames = options.sourceFrames;
  if (frames !== undefined && !(Number.isInteger(frames) && frames >= 1)) {
    throw new ConfigError("sourceFrames", `must be an integer >= 1, got ${frames}`);
  }
}

function adaptationOf(from: RelPosWindow, to: RelPosWindow): RelPosAdaptation {
  if (from[0] > 1) return "temporal-nearest";
  const spatial = from[1] !== to[1] || from[2] !== to[2];
  const repeat = to[0] > 1;
  if (spatial) return repeat ? "spatial-bicubic+repeat-over-dt" : "spatial-bicubic";
  return "repeat-over-dt";
}

function adaptTable(
  key: string,
  table: HostTensor,
  target: RelPosTarget,
  options: RelPosAdaptOptions,
): { tensor: HostTensor; entry: RelPosAdaptEntry | null } {
  const targetShape = [relPosTableRows(target.window), target.heads];
  if (table.dtype !== "f32" || table.shape.length !== 2) {
    throw new WeightError(
      `"${key}" ${table.dtype}${formatShape(table.shape)}: expected an f32 [rows, heads] table ` +
        `(target f32${formatShape(targetShape)})`,
    );
  }
  if (table.shape[1] !== target.heads) {
    throw tableError(
      key,
      table.shape,
      `has ${table.shape[1]} heads, the model ${target.heads} (target f32${formatShape(targetShape)})`,
    );
  }
  // As the reference: a table with the target's row count is taken as it is.
  if (table.shape[0] === targetShape[0]) return { tensor: table, entry: null };
  const from = sourceWindowOf(key, table, target, options);
  const tensor = interpolateRelPosTable3d(table, from, target.window, key);
  const entry: RelPosAdaptEntry = {
    key,
    from: table.shape,
    to: tensor.shape,
    how: adaptationOf(from, target.window),
    detail: `window ${formatShape(from)} -> ${formatShape(target.window)}`,
  };
  return { tensor, entry };
}

/**
 * Adapts every `…relative_position_bias_table` of a state_dict (any prefix, per-layer or shared)
 * to the target window, and drops every `…relative_position_index` buffer whose shape is not the
 * target's [N+1, N+1] (N = T·H·W; the index is derived from the window, and sprig builds its own).
 * The reference pops every index buffer; one that still fits is kept here so a loader can check
 * it. Other entries pass through. Returns a new map and one report entry per changed key.
 */
export function adaptRelPosTables(
  weights: ReadonlyMap<string, HostTensor>,
  target: RelPosTarget,
  options: RelPosAdaptOptions = {},
): { weights: Map<string, HostTensor>; report: RelPosAdaptEntry[] } {
  checkSourceFrames(options);
  const [t, h, w] = target.window;
  const seq = t * h * w + 1;
  const out = new Map<string, HostTensor>();
  const report: RelPosAdaptEntry[] = [];
  for (const [key, tensor] of weights) {
    if (key.endsWith(INDEX_SUFFIX) && !sameWindow(tensor.shape, [seq, seq])) {
      report.push({
        key,
        from: tensor.shape,
        to: null,
        how: "dropped-index",
        detail: `derived data; the target's index is ${formatShape([seq, seq])}`,
      });
      continue;
    }
    if (!key.endsWith(TABLE_SUFFIX)) {
      out.set(key, tensor);
      continue;
    }
    const adapted = adaptTable(key, tensor, target, options);
    out.set(key, adapted.tensor);
    if (adapted.entry !== null) report.push(adapted.entry);
  }
  return { weights: out, report };
}
