/**
 * Adapting relative position bias tables across clip lengths and from image checkpoints, with
 * the reference's arithmetic (interpolate_pos_relative_bias_beit_3d in SViTT's models/utils.py):
 * Δt resampled in torch "nearest" mode, image tables repeated over Δt, BEiT's warped bicubic
 * spatial interpolation, CLS rows carried over.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, WeightError } from "../../src/ir/errors.js";
import { type RelPosWindow, relPosIndex, relPosTableRows } from "../../src/ir/relpos.js";
import { f32Tensor, type HostTensor, i32Tensor } from "../../src/ir/tensor.js";
import {
  adaptRelPosTables,
  beitWarpedOffsets,
  interpolateRelPosTable3d,
  relPosTableFrom2d,
  squareGridOfTable,
  torchNearestSourceIndex,
  windowOfTable,
} from "../../src/models/vision/relpos-interpolate.js";

/** A table whose entry (row, head) is value(row, head). */
function tableOf(rows: number, heads: number, value: (row: number, head: number) => number) {
  const data = new Float32Array(rows * heads);
  for (let r = 0; r < rows; r++) for (let h = 0; h < heads; h++) data[r * heads + h] = value(r, h);
  return f32Tensor([rows, heads], data);
}

/** Row r of a table as an array. */
function rowOf(table: HostTensor, r: number): number[] {
  const heads = table.shape[1]!;
  return Array.from(table.data.subarray(r * heads, (r + 1) * heads));
}

function lastRows(table: HostTensor, n: number): number[] {
  const heads = table.shape[1]!;
  return Array.from(table.data.subarray(table.data.length - n * heads));
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

describe("windowOfTable", () => {
  it("reads T from (2T-1)(2H-1)(2W-1) + 3 rows", () => {
    expect(windowOfTable(7 * 27 * 27 + 3, [14, 14])).toEqual([4, 14, 14]);
    expect(windowOfTable(31 * 27 * 27 + 3, [14, 14])).toEqual([16, 14, 14]);
    expect(windowOfTable(3 * 3 * 5 + 3, [2, 3])).toEqual([2, 2, 3]);
    // An image BEiT table (27·27 + 3 = 732 rows) is the T = 1 table on its grid.
    expect(windowOfTable(732, [14, 14])).toEqual([1, 14, 14]);
  });

  it("rejects row counts that fit no window, naming the table and grid", () => {
    expect(() => windowOfTable(7 * 729 + 4, [14, 14], "layer.0.table")).toThrow(WeightError);
    expect(() => windowOfTable(7 * 729 + 4, [14, 14], "layer.0.table")).toThrow(
      /"layer\.0\.table": 5107 rows fit no window on the 14x14 grid/,
    );
    // 2T - 1 = 2 is even: no window.
    expect(() => windowOfTable(2 * 729 + 3, [14, 14])).toThrow(WeightError);
    expect(() => windowOfTable(2, [14, 14])).toThrow(WeightError);
  });

  it("finds square grids of image tables", () => {
    expect(squareGridOfTable(27 * 27)).toEqual([14, 14]);
    expect(squareGridOfTable(47 * 47)).toEqual([24, 24]);
    expect(squareGridOfTable(28 * 28)).toBeNull(); // even side
    expect(squareGridOfTable(27 * 26)).toBeNull();
  });
});

describe("torch nearest source index", () => {
  it("is floor(i * in / out) for the SViTT clip lengths (hand-checked: 3 -> 7)", () => {
    // Δt rows for T = 2 -> 4: 3 -> 7, i·3/7 = 0, .43, .86, 1.29, 1.71, 2.14, 2.57.
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => torchNearestSourceIndex(i, 3, 7))).toEqual([
      0, 0, 0, 1, 1, 2, 2,
    ]);
  });

  it("uses a float32 scale: 21 -> 69 rows, index 23 takes 6 where the exact floor is 7", () => {
    // scale = float32(21/69) = 0.30434781312942505 < 7/23; 23·scale = 6.99999970…, which
    // rounds to the float32 6.9999995, floor 6. Likewise 46·scale -> 13 (exact 14).
    expect(torchNearestSourceIndex(23, 21, 69)).toBe(6);
    expect(torchNearestSourceIndex(46, 21, 69)).toBe(13);
    expect(torchNearestSourceIndex(22, 21, 69)).toBe(6);
    expect(torchNearestSourceIndex(24, 21, 69)).toBe(7);
  });

  it("copies for equal sizes, halves for doubling and clamps at the end", () => {
    expect(torchNearestSourceIndex(5, 7, 7)).toBe(5);
    expect(torchNearestSourceIndex(5, 4, 8)).toBe(2);
    expect(torchNearestSourceIndex(6, 7, 7)).toBe(6);
    expect(torchNearestSourceIndex(30, 15, 31)).toBe(14);
  });
});

describe("interpolateRelPosTable3d", () => {
  it("returns a table already of the target window unchanged", () => {
    const window: RelPosWindow = [4, 2, 3];
    const table = tableOf(relPosTableRows(window), 3, (r, h) => r * 0.25 - h);
    const before = Float32Array.from(table.data);
    const out = interpolateRelPosTable3d(table, window, window);
    expect(out.shape).toEqual(table.shape);
    expect(out.data).toEqual(before);
  });

  it("T 2 -> 4 with H = W = 1, by hand", () => {
    // Rows: Δt = -1, 0, 1, then cls→token, token→cls, cls→cls; two heads.
    const table = f32Tensor(
      [6, 2],
      Float32Array.from([10, 20, 11, 21, 12, 22, 100, 200, 101, 201, 102, 202]),
    );
    const out = interpolateRelPosTable3d(table, [2, 1, 1], [4, 1, 1]);
    expect(out.shape).toEqual([10, 2]);
    // Δt' = -3..3 take Δt rows 0,0,0,1,1,2,2 (floor(i·3/7)).
    expect(Array.from(out.data)).toEqual([
      10, 20, 10, 20, 10, 20, 11, 21, 11, 21, 12, 22, 12, 22, 100, 200, 101, 201, 102, 202,
    ]);
  });

  it("T 11 -> 35 follows torch's float32 index arithmetic", () => {
    const table = tableOf(21 + 3, 1, (r) => r);
    const out = interpolateRelPosTable3d(table, [11, 1, 1], [35, 1, 1]);
    // Exact rational floor(i·21/69), except the two rows the float32 scale moves (see above).
    const expected = Array.from({ length: 69 }, (_, i) => Math.floor((i * 21) / 69));
    expected[23] = 6;
    expected[46] = 13;
    expect(Array.from(out.data.subarray(0, 69))).toEqual(expected);
    expect(lastRows(out, 3)).toEqual([21, 22, 23]);
  });

  // Nearest resampling does not keep an affine function of Δt affine (it makes it a staircase),
  // so the property checked is the one it has: row Δt' is a copy of row Δt_src(Δt') with
  // Δt_src + T - 1 = floor((Δt' + T' - 1)(2T - 1) / (2T' - 1)), for every spatial offset and head.
  // For these sizes gcd(2T-1, 2T'-1) = 1, so no product is an exact integer and the float32
  // scale cannot move an index: the exact integer formula is the whole truth.
  for (const [from, to] of [
    [4, 8],
    [4, 16],
    [8, 16],
    [2, 4],
    [1, 4],
  ] as const) {
    it(`maps an affine table in Δt row by row, T ${from} -> ${to} on a 3x2 grid`, () => {
      const [inDt, outDt] = [2 * from - 1, 2 * to - 1];
      expect(gcd(inDt, outDt)).toBe(1);
      const spatial = 5 * 3;
      const heads = 4;
      const value = (dt: number, s: number, h: number) => 1000 * h + s + 0.5 * dt;
      const table = tableOf(relPosTableRows([from, 3, 2]), heads, (r, h) =>
        r < inDt * spatial
          ? value(Math.floor(r / spatial) - (from - 1), r % spatial, h)
          : -7 - r + h / 8,
      );
      const out = interpolateRelPosTable3d(table, [from, 3, 2], [to, 3, 2]);
      expect(out.shape).toEqual([relPosTableRows([to, 3, 2]), heads]);
      for (let i = 0; i < outDt; i++) {
        const sourceDt = Math.floor((i * inDt) / outDt) - (from - 1);
        for (let s = 0; s < spatial; s++) {
          expect(rowOf(out, i * spatial + s)).toEqual(
            [0, 1, 2, 3].map((h) => value(sourceDt, s, h)),
          );
        }
      }
      expect(lastRows(out, 3)).toEqual(lastRows(table, 3));
    });
  }

  it("is not symmetric in Δt: for T 4 -> 8, Δt' = +1 takes Δt = 0 but Δt' = -1 takes Δt = -1", () => {
    const table = tableOf(7 + 3, 1, (r) => r - 3); // row value = Δt on a 1x1 grid
    const out = interpolateRelPosTable3d(table, [4, 1, 1], [8, 1, 1]);
    const dtOf = (dtNew: number) => out.data[dtNew + 7];
    // i = Δt' + 7: floor(8·7/15) = 3 -> Δt 0; floor(6·7/15) = 2 -> Δt -1; centre and ends kept.
    expect(dtOf(1)).toBe(0);
    expect(dtOf(-1)).toBe(-1);
    expect(dtOf(0)).toBe(0);
    expect([dtOf(-7), dtOf(7)]).toEqual([-3, 3]);
  });

  it("shrinking T 8 -> 4 moves Δt' = 0 to Δt = -1 (floor(3·15/7) = 6)", () => {
    const table = tableOf(15 + 3, 1, (r) => r - 7);
    const out = interpolateRelPosTable3d(table, [8, 1, 1], [4, 1, 1]);
    expect(Array.from(out.data.subarray(0, 7))).toEqual([-7, -5, -3, -1, 1, 3, 5]);
  });

  it("treats a T = 1 table as an image table: repeated over Δt", () => {
    const table = tableOf(relPosTableRows([1, 2, 2]), 2, (r, h) => r + 0.5 * h);
    const a = interpolateRelPosTable3d(table, [1, 2, 2], [3, 2, 2]);
    const b = relPosTableFrom2d(table, [2, 2], [3, 2, 2]);
    expect(a.data).toEqual(b.data);
  });

  it("rejects a grid change on a multi-frame table and a wrong row count", () => {
    const table = tableOf(relPosTableRows([2, 3, 3]), 2, (r) => r);
    expect(() => interpolateRelPosTable3d(table, [2, 3, 3], [4, 4, 4], "t")).toThrow(
      /"t" f32\[78,2\]: window \[2,3,3\] -> \[4,4,4\] changes the grid .*target f32\[346,2\]/,
    );
    expect(() => interpolateRelPosTable3d(table, [4, 3, 3], [8, 3, 3], "t")).toThrow(
      /"t" f32\[78,2\]: window \[4,3,3\] needs 178 rows \(f32\[178,2\]\), got 78/,
    );
  });
});

describe("relPosTableFrom2d", () => {
  it("repeats an image table over every Δt, by hand for a 1x1 grid", () => {
    const table = f32Tensor([4, 2], Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    const out = relPosTableFrom2d(table, [1, 1], [3, 1, 1]);
    expect(Array.from(out.data)).toEqual([1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("gives every pair of frames the image bias of their spatial positions", () => {
    const [h, w] = [2, 3];
    const image = tableOf(relPosTableRows([1, h, w]), 3, (r, head) => r * 3 + head + 0.25);
    const window: RelPosWindow = [3, h, w];
    const video = relPosTableFrom2d(image, [h, w], window);
    expect(video.shape).toEqual([relPosTableRows(window), 3]);
    const frame = h * w;
    const tokens = window[0] * frame + 1;
    for (let a = 0; a < tokens; a++) {
      for (let c = 0; c < tokens; c++) {
        // Position ids: 0 is CLS, a local token keeps its spatial position within its frame.
        const spatialId = (id: number) => (id === 0 ? 0 : ((id - 1) % frame) + 1);
        const imageRow = relPosIndex([1, h, w], spatialId(a), spatialId(c));
        expect(rowOf(video, relPosIndex(window, a, c))).toEqual(rowOf(image, imageRow));
      }
    }
  });

  it("keeps a 1-frame target on the same grid as it is", () => {
    const table = tableOf(relPosTableRows([1, 3, 3]), 2, (r) => r);
    expect(relPosTableFrom2d(table, [3, 3], [1, 3, 3]).data).toEqual(table.data);
  });

  // Source 3x3 grid (5 offsets per axis), target 4x4 (7). Local rows Z[i][j] (Δh = i - 2,
  // Δw = j - 2) = ((7i + 3j) mod 11) - 4.5, CLS rows 0.5, -1.25, 2.
  const source5 = Array.from(
    { length: 25 },
    (_, k) => ((7 * Math.floor(k / 5) + 3 * (k % 5)) % 11) - 4.5,
  );
  const image5 = f32Tensor([28, 1], Float32Array.from([...source5, 0.5, -1.25, 2]));
  // Computed with scipy 1.17 running the reference's lines (geometric-progression offsets and
  // the bisection for q) with RectBivariateSpline(kx = ky = 3, s = 0) in place of interp2d(kind =
  // "cubic"); both fit with FITPACK's regrid_smth and evaluate with bispev. Then float32.
  const scipy7 = [
    [-4.5, -3.646667003631592, -1.5, 1.5, 4.5, 1.9533272981643677, -3.5],
    [
      3.1761810779571533, 10.758522033691406, 3.5571370124816895, -5.322848320007324,
      6.037139892578125, 12.1441011428833, 1.5571370124816895,
    ],
    [2.5, 9.094277381896973, 5.5, -2.5, 0.5, 5.265711307525635, 3.5],
    [-1.5, -3.2657113075256348, 1.5, 4.5, -3.5, -7.0942769050598145, -0.5],
    [5.5, 0.21429166197776794, -2.5, 0.5, 3.5, 0.7857083678245544, -4.5],
    [
      8.490467071533203, 8.514410972595215, -0.5571370720863342, -5.037139892578125,
      6.322848320007324, 9.361194610595703, -2.5571370124816895,
    ],
    [1.5, 8.094277381896973, 4.5, -3.5, -0.5, 4.265711307525635, 2.5],
  ];

  it("interpolates a 3x3 image grid to 4x4 as scipy does for the reference", () => {
    const out = relPosTableFrom2d(image5, [3, 3], [1, 4, 4]);
    expect(out.shape).toEqual([52, 1]);
    expect(Array.from(out.data.subarray(0, 49))).toEqual(scipy7.flat().map(Math.fround));
    expect(lastRows(out, 3)).toEqual([0.5, -1.25, 2]);
  });

  it("hits the source values where a target offset is a source offset", () => {
    // Source offsets 0, ±1, ±(1+q) with q <= 1.5; targets -3..3. Targets 0, ±1 coincide with
    // sources and ±3 lie beyond ±(1+q), where the spline evaluation clamps to the end offsets.
    const out = relPosTableFrom2d(image5, [3, 3], [1, 4, 4]);
    const sourceOf = new Map([
      [0, 0],
      [2, 1],
      [3, 2],
      [4, 3],
      [6, 4],
    ]);
    for (const [a, i] of sourceOf) {
      for (const [b, j] of sourceOf) expect(out.data[a * 7 + b]).toBe(source5[i * 5 + j]);
    }
  });

  it("keeps a constant table constant and heads independent, then repeats over Δt", () => {
    const table = tableOf(28, 2, (r, h) => (r >= 25 ? 10 + r : h === 0 ? image5.data[r]! : 0.75));
    const out = relPosTableFrom2d(table, [3, 3], [2, 4, 4]);
    expect(out.shape).toEqual([3 * 49 + 3, 2]);
    for (let t = 0; t < 3; t++) {
      for (let s = 0; s < 49; s++) {
        expect(rowOf(out, t * 49 + s)).toEqual([Math.fround(scipy7.flat()[s]!), 0.75]);
      }
    }
    expect(lastRows(out, 3)).toEqual([35, 35, 36, 36, 37, 37]);
  });

  it("stretches 14x14 to 24x24 with BEiT's q = 1.090307", () => {
    // The reference keeps a commented-out clamp "if q > 1.090307", the value for 224 -> 384 px.
    const { source, target } = beitWarpedOffsets(27, 47);
    expect(source).toHaveLength(27);
    expect(target).toEqual(Array.from({ length: 47 }, (_, i) => i - 23));
    expect(source[15]! - source[14]!).toBeCloseTo(1.090307, 5);
    // The bisection makes the outermost source offset 1 + q + … + q^12 ≈ 47 // 2 = 23.
    expect(Math.abs(source[26]! - 23)).toBeLessThan(1e-4);
  });

  it("rejects non-square grids, too small a source grid and a wrong row count", () => {
    const rect = tableOf(relPosTableRows([1, 3, 4]), 1, (r) => r);
    expect(() => relPosTableFrom2d(rect, [3, 4], [2, 5, 5], "img")).toThrow(
      /"img" f32\[38,1\]: the reference interpolates only square grids, not 3x4 -> 5x5/,
    );
    const small = tableOf(relPosTableRows([1, 2, 2]), 1, (r) => r);
    expect(() => relPosTableFrom2d(small, [2, 2], [1, 3, 3], "img")).toThrow(/at least 3x3/);
    expect(() => relPosTableFrom2d(small, [3, 3], [1, 3, 3], "img")).toThrow(
      /"img" f32\[12,1\]: an image table on the 3x3 grid needs 28 rows/,
    );
  });
});

describe("adaptRelPosTables", () => {
  const heads = 4;
  const layerKey = (n: number, name: string) =>
    `vision_encoder.encoder.layer.${n}.attention.attention.relative_position_bias.${name}`;

  it("expands a 2-frame checkpoint to 4 frames, drops stale indices, passes the rest", () => {
    const from: RelPosWindow = [2, 2, 2];
    const to: RelPosWindow = [4, 2, 2];
    const tables = [0, 1].map((n) =>
      tableOf(relPosTableRows(from), heads, (r, h) => n * 100 + r + h / 4),
    );
    const fittingIndex = i32Tensor([17, 17]);
    const other = f32Tensor([3], Float32Array.from([1, 2, 3]));
    const weights = new Map<string, HostTensor>([
      [layerKey(0, "relative_position_bias_table"), tables[0]!],
      [layerKey(0, "relative_position_index"), i32Tensor([9, 9])],
      [layerKey(1, "relative_position_bias_table"), tables[1]!],
      [layerKey(1, "relative_position_index"), fittingIndex],
      ["vision_encoder.embeddings.cls_token", other],
    ]);
    const { weights: out, report } = adaptRelPosTables(weights, { window: to, heads });
    expect([...out.keys()]).toEqual([
      layerKey(0, "relative_position_bias_table"),
      layerKey(1, "relative_position_bias_table"),
      layerKey(1, "relative_position_index"),
      "vision_encoder.embeddings.cls_token",
    ]);
    expect(out.get("vision_encoder.embeddings.cls_token")).toBe(other);
    expect(out.get(layerKey(1, "relative_position_index"))).toBe(fittingIndex);
    for (const n of [0, 1]) {
      const key = layerKey(n, "relative_position_bias_table");
      expect(out.get(key)!.data).toEqual(interpolateRelPosTable3d(tables[n]!, from, to).data);
    }
    expect(report).toEqual([
      {
        key: layerKey(0, "relative_position_bias_table"),
        from: [30, 4],
        to: [66, 4],
        how: "temporal-nearest",
        detail: "window [2,2,2] -> [4,2,2]",
      },
      {
        key: layerKey(0, "relative_position_index"),
        from: [9, 9],
        to: null,
        how: "dropped-index",
        detail: "derived data; the target's index is [17,17]",
      },
      {
        key: layerKey(1, "relative_position_bias_table"),
        from: [30, 4],
        to: [66, 4],
        how: "temporal-nearest",
        detail: "window [2,2,2] -> [4,2,2]",
      },
    ]);
  });

  it("maps an image BEiT checkpoint (HF key names) by repeating, or interpolating first", () => {
    const key =
      "encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table";
    const image = tableOf(relPosTableRows([1, 3, 3]), heads, (r, h) => r - h);
    const same = adaptRelPosTables(new Map([[key, image]]), { window: [2, 3, 3], heads });
    expect(same.weights.get(key)!.data).toEqual(relPosTableFrom2d(image, [3, 3], [2, 3, 3]).data);
    expect(same.report.map((e) => e.how)).toEqual(["repeat-over-dt"]);

    const larger = adaptRelPosTables(new Map([[key, image]]), { window: [2, 4, 4], heads });
    expect(larger.weights.get(key)!.shape).toEqual([3 * 49 + 3, heads]);
    expect(larger.report[0]).toMatchObject({
      how: "spatial-bicubic+repeat-over-dt",
      detail: "window [1,3,3] -> [2,4,4]",
    });
  });

  it("leaves tables of the target size alone and reports nothing", () => {
    const key = layerKey(0, "relative_position_bias_table");
    const table = tableOf(relPosTableRows([4, 2, 2]), heads, (r) => r);
    const { weights, report } = adaptRelPosTables(new Map([[key, table]]), {
      window: [4, 2, 2],
      heads,
    });
    expect(weights.get(key)).toBe(table);
    expect(report).toEqual([]);
  });

  it("reads the source window from sourceFrames when given", () => {
    const key = layerKey(0, "relative_position_bias_table");
    // 81 local rows: a 5-frame table on a 2x2 grid, or an image table on a 5x5 grid.
    const table = tableOf(81 + 3, heads, (r) => r);
    const asFrames = adaptRelPosTables(new Map([[key, table]]), { window: [8, 2, 2], heads });
    expect(asFrames.report[0]!.detail).toBe("window [5,2,2] -> [8,2,2]");
    const asImage = adaptRelPosTables(
      new Map([[key, table]]),
      { window: [2, 2, 2], heads },
      { sourceFrames: 1 },
    );
    expect(asImage.report[0]).toMatchObject({
      how: "spatial-bicubic+repeat-over-dt",
      detail: "window [1,5,5] -> [2,2,2]",
    });
  });

  it("names the key and both shapes when heads differ or no window fits", () => {
    const key = layerKey(3, "relative_position_bias_table");
    const target = { window: [4, 2, 2] as RelPosWindow, heads };
    const wrongHeads = tableOf(relPosTableRows([2, 2, 2]), 6, () => 0);
    expect(() => adaptRelPosTables(new Map([[key, wrongHeads]]), target)).toThrow(WeightError);
    expect(() => adaptRelPosTables(new Map([[key, wrongHeads]]), target)).toThrow(
      `"${key}" f32[30,6]: has 6 heads, the model 4 (target f32[66,4])`,
    );
    const noWindow = tableOf(40, heads, () => 0);
    expect(() => adaptRelPosTables(new Map([[key, noWindow]]), target)).toThrow(
      `"${key}" f32[40,4]: 40 rows fit no window on the 2x2 grid nor on a square grid`,
    );
    expect(() =>
      adaptRelPosTables(new Map([[key, noWindow]]), target, { sourceFrames: 2 }),
    ).toThrow(/40 rows fit no 2-frame window/);
    const ints = i32Tensor([30, 4]);
    expect(() => adaptRelPosTables(new Map([[key, ints]]), target)).toThrow(
      /i32\[30,4\]: expected an f32 \[rows, heads\] table \(target f32\[66,4\]\)/,
    );
  });

  it("rejects a sourceFrames that is not a positive integer", () => {
    expect(() =>
      adaptRelPosTables(new Map(), { window: [4, 2, 2], heads }, { sourceFrames: 0 }),
    ).toThrow(ConfigError);
  });
});
