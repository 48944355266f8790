/**
 * The 3-D neighbourhood window (src/patterns/window3d.ts), against NATTEN's neighbourhood
 * stated independently here: per axis, a query reads the k positions of its own dilation
 * group starting at NATTEN's window start (centred, shifted inwards at the borders), and the
 * bench's `--pattern` form of it (src/api/attention-bench.ts).
 */
import { describe, expect, it } from "vitest";
import {
  attentionGraphs,
  benchPatternLabel,
  parseBenchPattern,
} from "../../src/api/attention-bench.js";
import { analyzeCost } from "../../src/cost.js";
import { ConfigError } from "../../src/ir/errors.js";
import { isRagged, partialCount } from "../../src/ir/pattern.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { window3dLayout, window3dReads } from "../../src/patterns/window3d.js";
import { SMALL_MODEL } from "../models/support.js";

/**
 * NATTEN's window start along an axis of `length` for `index`, kernel k = 2·ns + 1 and
 * dilation d, as its documentation describes the neighbourhood: the window is centred and
 * shifted inwards at the borders, over the positions ≡ index (mod d).
 */
function nattenStart(index: number, length: number, k: number, d: number): number {
  const ns = (k - 1) / 2;
  if (index - ns * d < 0) return index % d;
  if (index + ns * d >= length) {
    const residue = index % d;
    const whole = Math.floor(length / d) * d;
    const extra = length - whole;
    return residue < extra ? length - extra + residue - 2 * ns * d : whole + residue - k * d;
  }
  return index - ns * d;
}

function nattenReads(length: number, k: number, d: number, q: number, key: number): boolean {
  const start = nattenStart(q, length, k, d);
  return key >= start && key < start + k * d && (key - start) % d === 0;
}

describe("window3dReads", () => {
  it("matches NATTEN's neighbourhood on every axis, with and without dilation", () => {
    const grid: [number, number, number] = [5, 7, 9];
    for (const [kernel, dilation] of [
      [
        [3, 3, 5],
        [1, 1, 1],
      ],
      [
        [1, 3, 3],
        [1, 2, 3],
      ],
      [
        [5, 7, 9],
        [1, 1, 1],
      ],
    ] as [[number, number, number], [number, number, number]][]) {
      const reads = window3dReads({ grid, kernel, dilation });
      const frame = grid[1] * grid[2];
      const coord = (i: number) => [
        Math.floor(i / frame),
        Math.floor((i % frame) / grid[2]),
        i % grid[2],
      ];
      const total = grid[0] * frame;
      for (let q = 0; q < total; q++) {
        const qc = coord(q);
        let count = 0;
        for (let key = 0; key < total; key++) {
          const kc = coord(key);
          const want = [0, 1, 2].every((a) =>
            nattenReads(grid[a]!, kernel[a]!, dilation[a]!, qc[a]!, kc[a]!),
          );
          expect(reads(q, key)).toBe(want);
          if (want) count++;
        }
        // Every query reads the full window: NATTEN shifts it inwards at the borders.
        expect(count).toBe(kernel[0] * kernel[1] * kernel[2]);
      }
    }
  });

  it("rejects even windows and windows larger than their axis", () => {
    expect(() => window3dReads({ grid: [4, 4, 4], kernel: [2, 3, 3] })).toThrow(
      /pattern.window3d.kernel.t.*must be an odd integer >= 1, got 2/,
    );
    expect(() =>
      window3dReads({ grid: [4, 4, 4], kernel: [3, 3, 3], dilation: [1, 2, 1] }),
    ).toThrow(/window 3 with dilation 2 does not fit the 4 tokens of axis y \(at most 2\)/);
  });
});

describe("window3dLayout", () => {
  it("is ragged with partial blocks at SViTT's sizes (8 frames of 14 x 14, block 56)", () => {
    const layout = window3dLayout({ grid: [8, 14, 14], kernel: [3, 7, 7] }, 56, 1568, "test");
    expect(isRagged(layout)).toBe(true);
    expect(layout.queryBlocks).toBe(28);
    expect(partialCount(layout)).toBeGreaterThan(layout.blocks.length / 2);
    // Query block 0 (frame 0, rows 0-3) reads rows 0-6 (the window shifted inwards) of
    // frames 0-2: tokens 0-97, 196-293, 392-489, i.e. blocks 0-1, 3-5 and 7-8 of 56.
    expect(Array.from(layout.blocks.subarray(0, layout.rowStart![1]!))).toEqual([
      0, 1, 3, 4, 5, 7, 8,
    ]);
  });

  it("needs the whole grid in raster order", () => {
    expect(() =>
      window3dLayout({ grid: [8, 14, 14], kernel: [3, 7, 7] }, 56, 942, "layer 4"),
    ).toThrow(ConfigError);
    expect(() =>
      window3dLayout({ grid: [8, 14, 14], kernel: [3, 7, 7] }, 56, 942, "layer 4"),
    ).toThrow(/layer 4: a 3-D window needs the 1568 tokens of the 8x14x14 grid/);
  });
});

describe("the bench's --pattern", () => {
  it("parses svitt and window3d forms, and names what it cannot", () => {
    expect(parseBenchPattern("svitt")).toEqual({ kind: "svitt" });
    expect(parseBenchPattern("window3d")).toEqual({
      kind: "window3d",
      kernel: [3, 7, 7],
      blockSize: 56,
    });
    expect(parseBenchPattern("window3d:1x5x3,block=28")).toEqual({
      kind: "window3d",
      kernel: [1, 5, 3],
      blockSize: 28,
    });
    expect(benchPatternLabel(parseBenchPattern("window3d:3x7x7"))).toBe("window3d 3x7x7, block 56");
    expect(() => parseBenchPattern("window2d")).toThrow(
      /pattern "window2d" names no library pattern "window2d"; known patterns: svitt, dense, window, window3d/,
    );
    // Any library spec, with the bench's block size.
    expect(parseBenchPattern("divided + causal,block=49")).toEqual({
      kind: "spec",
      spec: "divided + causal",
      blockSize: 49,
    });
    expect(benchPatternLabel(parseBenchPattern("divided"))).toBe("divided space-time, block 56");
    expect(() => parseBenchPattern("window3d:3x7x7,block=0")).toThrow(/block size must be >= 1/);
  });

  it("builds a valid block-sparse layer of a window, cheaper than dense", () => {
    // The small model: 3 frames of 4 x 4 patches, a 1 x 3 x 3 window in blocks of 8.
    const pattern = parseBenchPattern("window3d:1x3x3,block=8");
    const { dense, sparse } = attentionGraphs(3, { tokenIndex: "input" }, SMALL_MODEL, pattern);
    verifyGraph(sparse);
    const node = sparse.nodes.find((n) => n.op === "blockSparseAttention");
    expect(node?.op === "blockSparseAttention" && node.attrs.padding).toBe("masked");
    expect(
      node?.op === "blockSparseAttention" && partialCount(node.attrs.pattern.layout),
    ).toBeGreaterThan(0);
    expect(analyzeCost(sparse).totals.attentionMacs).toBeLessThan(
      analyzeCost(dense).totals.attentionMacs,
    );
  });
});
