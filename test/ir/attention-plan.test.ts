/**
 * The attention plan (src/ir/attention-plan.ts): what it derives from a pattern, checked
 * against hand-written expectations on small layouts, and the cost model's count of ragged
 * rows and partial blocks (src/cost.ts).
 */
import { describe, expect, it } from "vitest";
import {
  attentionPlan,
  computedPairs,
  concatenatedOrder,
  entryReads,
  rowSlots,
  SLOT_EXCLUDED,
  SLOT_READ,
  SLOT_ZERO_KEY,
} from "../../src/ir/attention-plan.js";
import { nodeCost } from "../../src/cost.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { ShapeError } from "../../src/ir/errors.js";
import type { AttentionPattern, BlockLayout, PaddingMode } from "../../src/ir/pattern.js";
import { verifyGraph } from "../../src/ir/verify.js";

const custom = { kind: "custom", label: "test" } as const;

function pattern(layout: BlockLayout, blockSize: number, globalTokens = 1): AttentionPattern {
  return { globalTokens, blockSize, layout, origin: custom };
}

/** A one-word token mask of bs rows from row bit patterns. */
function mask(rows: readonly number[]): number[] {
  return rows.map((r) => r >>> 0);
}

// 10 local tokens in blocks of 4: M = 3, the last block has 2 real tokens (8, 9).
const shapes = { batch: 1, tokens: 11, hidden: 8, heads: 2 };

/** Row 0: [0 (partial), 2]; row 1: []; row 2: [2, 0]. Mask 0: query row r reads key r only. */
const ragged: BlockLayout = {
  heads: 1,
  queryBlocks: 3,
  blocksPerRow: 2,
  blocks: Int32Array.from([0, 2, 2, 0]),
  rowStart: Int32Array.from([0, 2, 2, 4]),
  entryMask: Int32Array.from([0, -1, -1, -1]),
  masks: Uint32Array.from(mask([0b0001, 0b0010, 0b0100, 0b1000])),
};

describe("attentionPlan", () => {
  it("lays a fixed layout out as CSR rows of W entries, one group of every block", () => {
    const fixed: BlockLayout = {
      heads: 1,
      queryBlocks: 3,
      blocksPerRow: 2,
      blocks: Int32Array.from([0, 1, 1, 2, 2, 0]),
    };
    const plan = attentionPlan(pattern(fixed, 4), shapes, "reference", null);
    expect(Array.from(plan.rowStart)).toEqual([0, 2, 4, 6]);
    expect(Array.from(plan.keyBlock)).toEqual([0, 1, 1, 2, 2, 0]);
    expect(plan.uniformRows).toBe(true);
    expect(plan.widestRow).toBe(2);
    expect(plan.partialEntries).toBe(0);
    expect(plan.paddedKeys).toBe(true);
    expect(plan.singleGroup).toBe(true);
    const [group] = plan.groups;
    expect(Array.from(group!.blocks)).toEqual([0, 1, 2]);
    expect(group!.keys).toBe(1 + 2 * 4);
    expect(group!.rowExcluded).toBeNull();
    // Row 1 reads blocks 1 and 2: positions 1 + 4..7 and 1 + 8..11, of which 10, 11 are padding.
    expect(Array.from(group!.keyPos.subarray(9, 18))).toEqual([0, 5, 6, 7, 8, 9, 10, 11, 12]);
    const kinds = Array.from(group!.slotKind.subarray(9, 18));
    expect(kinds).toEqual([0, 0, 0, 0, 0, 0, 0, SLOT_ZERO_KEY, SLOT_ZERO_KEY]);
    expect(group!.anyExcluded).toBe(false);
  });

  it("excludes padded keys under padding masked", () => {
    const plan = attentionPlan(pattern(ragged, 4), shapes, "masked", null);
    const { kinds } = rowSlots(plan, 0, 2);
    // Row 2 = [2, 0]: block 2's slots 3, 4 (positions 11, 12) are padding.
    expect(Array.from(kinds)).toEqual([0, 0, 0, SLOT_EXCLUDED, SLOT_EXCLUDED, 0, 0, 0, 0]);
  });

  it("keeps ragged rows, groups blocks by row width and maps them back", () => {
    const plan = attentionPlan(pattern(ragged, 4), shapes, "reference", null);
    expect(plan.uniformRows).toBe(false);
    expect(plan.widestRow).toBe(2);
    expect(plan.groups.map((g) => Array.from(g.blocks))).toEqual([[0, 2], [1]]);
    expect(plan.groups.map((g) => g.keys)).toEqual([9, 1]);
    // Concatenated group by group, blocks 0, 2, 1: block m goes back from position order[m].
    expect(Array.from(concatenatedOrder(plan))).toEqual([0, 2, 1]);
  });

  it("reads a partial block's token mask per query row, and records it per group", () => {
    const plan = attentionPlan(pattern(ragged, 4), shapes, "reference", null);
    expect(plan.partialEntries).toBe(1);
    for (let r = 0; r < 4; r++) {
      for (let t = 0; t < 4; t++) expect(entryReads(plan, 0, r, t)).toBe(r === t);
    }
    expect(entryReads(plan, 1, 0, 3)).toBe(true);
    const excluded = plan.groups[0]!.rowExcluded!;
    // Group 0, block 0, query row 1: slots [CLS, block 0 keys 0..3, block 2 keys 0..3].
    const keys = plan.groups[0]!.keys;
    expect(Array.from(excluded.subarray(keys, 2 * keys))).toEqual([0, 1, 0, 1, 1, 0, 0, 0, 0]);
  });

  it("treats a mask that sets every real pair as a full block", () => {
    // Block 2 has 2 real keys and 2 real queries: rows 0, 1 reading keys 0, 1 is all of it.
    const layout: BlockLayout = {
      heads: 1,
      queryBlocks: 3,
      blocksPerRow: 1,
      blocks: Int32Array.from([0, 1, 2]),
      rowStart: Int32Array.from([0, 1, 2, 3]),
      entryMask: Int32Array.from([-1, -1, 0]),
      masks: Uint32Array.from(mask([0b11, 0b11, 0, 0])),
    };
    const plan = attentionPlan(pattern(layout, 4), shapes, "masked", null);
    expect(Array.from(plan.entryMask)).toEqual([-1, -1, -1]);
    expect(plan.partialEntries).toBe(0);
  });

  it("keeps per-head rows and the bias's linear form", () => {
    // Head 0 rows [0], [], [1, 2]; head 1 rows [], [2], [2, 0].
    const perHead: BlockLayout = {
      heads: 2,
      queryBlocks: 3,
      blocksPerRow: 2,
      blocks: Int32Array.from([0, 1, 2, 2, 2, 0]),
      rowStart: Int32Array.from([0, 1, 1, 3, 3, 4, 6]),
    };
    const plan = attentionPlan(pattern(perHead, 4), shapes, "masked", { window: [1, 2, 5] });
    expect(plan.layoutHeads).toBe(2);
    expect(Array.from(rowSlots(plan, 1, 0).positions)).toEqual([0]);
    expect(Array.from(rowSlots(plan, 1, 2).positions)).toEqual([0, 9, 10, 11, 12, 1, 2, 3, 4]);
    // A block's group width is its widest row over the heads.
    expect(plan.groups.map((g) => [Array.from(g.blocks), g.width])).toEqual([
      [[0, 1], 1],
      [[2], 2],
    ]);
    // Head 0's block 1 row is empty: its one slot of the group is fill, excluded.
    const group = plan.groups[0]!;
    expect(Array.from(group.slotKind.subarray(group.keys, 2 * group.keys))).toEqual([
      SLOT_READ,
      SLOT_EXCLUDED,
      SLOT_EXCLUDED,
      SLOT_EXCLUDED,
      SLOT_EXCLUDED,
    ]);
    // (2·2 - 1)(2·5 - 1) = 27 per frame, 9 per row; offset (2 - 1)·9 + (5 - 1).
    expect(plan.relPos).toMatchObject({ frameStride: 27, rowStride: 9, offset: 13 });
  });

  it("is computed once per pattern and arguments", () => {
    const p = pattern(ragged, 4);
    expect(attentionPlan(p, shapes, "masked", null)).toBe(attentionPlan(p, shapes, "masked", null));
    expect(attentionPlan(p, shapes, "masked", null)).not.toBe(
      attentionPlan(p, shapes, "reference", null),
    );
  });

  it("refuses a pattern that does not fit the tokens", () => {
    expect(() =>
      attentionPlan(pattern(ragged, 4), { ...shapes, tokens: 20 }, "masked", null),
    ).toThrow(ShapeError);
    expect(() =>
      attentionPlan(pattern(ragged, 4), { ...shapes, tokens: 20 }, "masked", null),
    ).toThrow(/3 query blocks; 19 local tokens in blocks of 4 need 5/);
  });
});

describe("the cost model counts what the plan computes", () => {
  function costOf(layout: BlockLayout, padding: PaddingMode) {
    const b = new GraphBuilder("cost");
    const type = { dtype: "f32", shape: [2, 11, 8] } as const;
    const refs = [b.input("q", type), b.input("k", type), b.input("v", type)];
    const [context] = b.add("blockSparseAttention", refs, {
      heads: 2,
      pattern: pattern(layout, 4),
      padding,
      relPosBias: null,
    });
    b.output("context", context!);
    const graph = verifyGraph(b.build());
    return nodeCost(graph, graph.nodes[context!.node]!);
  }

  it("ragged rows by their own length, partial blocks in full, padded query rows included", () => {
    // Global row: 11 keys. Rows of 2, 0, 2 blocks: 4 query rows x (1 + 8), 4 x 1, 4 x (1 + 8)
    // slots (block 2's 2 padded query rows included), per batch item and channel.
    const pairs = 11 + 4 * 9 + 4 * 1 + 4 * 9;
    const cost = costOf(ragged, "reference");
    expect(cost.macs).toBe(2 * 2 * pairs * 8);
    // Real queries: CLS 11 slots, 4 x 9, 4 x 1, 2 x 9 (block 2 has 2 real tokens).
    expect(cost.keysPerQuery).toBeCloseTo((11 + 36 + 4 + 18) / 11, 12);
    expect(computedPairs(attentionPlan(pattern(ragged, 4), shapes, "reference", null)).pairs).toBe(
      pairs,
    );
  });

  it("averages per-head layouts over the heads", () => {
    const perHead: BlockLayout = {
      heads: 2,
      queryBlocks: 3,
      blocksPerRow: 3,
      blocks: Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]),
      rowStart: Int32Array.from([0, 3, 6, 9, 9, 9, 10]),
    };
    // Head 0: 3 rows of 3 blocks; head 1: rows of 0, 0, 1 blocks. Each head owns 4 channels.
    const head0 = 11 + 3 * 4 * (1 + 12);
    const head1 = 11 + 4 * 1 + 4 * 1 + 4 * (1 + 4);
    expect(costOf(perHead, "reference").macs).toBe(2 * 2 * 4 * (head0 + head1));
  });
});

describe("slot kinds", () => {
  it("are the three the kernels know", () => {
    expect(new Set([SLOT_READ, SLOT_ZERO_KEY, SLOT_EXCLUDED]).size).toBe(3);
  });
});
