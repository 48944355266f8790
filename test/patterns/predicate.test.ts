/**
 * Token predicates compiled to block layouts (src/patterns/predicate.ts): the layout reads
 * exactly the pairs the predicate reads (reconstructed through the attention plan), full
 * blocks are those read entirely, rows list blocks in ascending order, equal masks are stored
 * once, and uniform all-full results come back in the fixed form.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { attentionPlan, entryReads, planRow } from "../../src/ir/attention-plan.js";
import { ConfigError } from "../../src/ir/errors.js";
import { type BlockLayout, isRagged, layoutRow, maskWords } from "../../src/ir/pattern.js";
import { layoutFromPredicate } from "../../src/patterns/predicate.js";
import { PREDICATE_KINDS, randomPredicate, type Reads } from "../properties/ragged-layouts.js";

/** Whether the layout reads (q, k) under layout head h, from the attention plan's rows and masks. */
function layoutReads(layout: BlockLayout, bs: number, local: number): Reads {
  const plan = attentionPlan(
    { globalTokens: 1, blockSize: bs, layout, origin: { kind: "custom", label: "t" } },
    { batch: 1, tokens: local + 1, hidden: layout.heads, heads: layout.heads },
    "masked",
    null,
  );
  return (h, q, k) => {
    const { first, count } = planRow(plan, h, Math.floor(q / bs));
    for (let j = 0; j < count; j++) {
      const e = first + j;
      if (plan.keyBlock[e] === Math.floor(k / bs) && entryReads(plan, e, q % bs, k % bs))
        return true;
    }
    return false;
  };
}

describe("layoutFromPredicate", () => {
  it("reads exactly the predicate's pairs, for random predicates, sizes and heads", () => {
    fc.assert(
      fc.property(
        fc.record({
          local: fc.integer({ min: 1, max: 45 }),
          blockSize: fc.integer({ min: 1, max: 40 }),
          heads: fc.integer({ min: 1, max: 3 }),
          kind: fc.constantFrom(...PREDICATE_KINDS),
          seed: fc.nat(),
        }),
        ({ local, blockSize, heads, kind, seed }) => {
          const reads = randomPredicate(kind, local, seed, heads > 1);
          const layout = layoutFromPredicate({
            localTokens: local,
            blockSize,
            heads,
            reads,
            where: "test",
          });
          const compiled = layoutReads(layout, blockSize, local);
          for (let h = 0; h < heads; h++) {
            for (let q = 0; q < local; q++) {
              for (let k = 0; k < local; k++) {
                if (compiled(h, q, k) !== reads(h, q, k)) {
                  expect({ h, q, k, compiled: compiled(h, q, k) }).toEqual({
                    h,
                    q,
                    k,
                    compiled: reads(h, q, k),
                  });
                }
              }
            }
            for (let m = 0; m < layout.queryBlocks; m++) {
              const row = layoutRow(layout, h, m);
              expect(row).toEqual([...row].sort((a, b) => a - b));
            }
          }
        },
      ),
      { numRuns: 80, seed: 2 },
    );
  });

  it("marks a block full when every pair is read and partial otherwise, storing equal masks once", () => {
    // 12 tokens in blocks of 4; a band |q - k| <= 1: diagonal blocks are partial (the same
    // mask each), off-diagonal neighbours partial (one pair), the rest left out.
    const band: Reads = (_h, q, k) => Math.abs(q - k) <= 1;
    const layout = layoutFromPredicate({
      localTokens: 12,
      blockSize: 4,
      heads: 1,
      reads: band,
      where: "band",
    });
    expect(isRagged(layout)).toBe(true);
    expect(Array.from(layout.rowStart!)).toEqual([0, 2, 5, 7]);
    expect(Array.from(layout.blocks)).toEqual([0, 1, 0, 1, 2, 1, 2]);
    const masks = layout.entryMask!;
    // Diagonal entries 0, 3, 6 share one mask; the upper (entries 1, 4) and lower (2, 5) too.
    expect(masks[0]).toBe(masks[3]);
    expect(masks[3]).toBe(masks[6]);
    expect(masks[1]).toBe(masks[4]);
    expect(masks[2]).toBe(masks[5]);
    expect(layout.masks!.length).toBe(3 * 4 * maskWords(4));
    // A predicate of whole 4 x 4 cells makes full blocks only.
    const cells: Reads = (_h, q, k) => Math.floor(q / 4) !== Math.floor(k / 4);
    const full = layoutFromPredicate({
      localTokens: 12,
      blockSize: 4,
      heads: 1,
      reads: cells,
      where: "cells",
    });
    expect(full.entryMask).toBeUndefined();
    expect(full.rowStart).toBeUndefined();
    expect(full.blocksPerRow).toBe(2);
    expect(Array.from(full.blocks)).toEqual([1, 2, 0, 2, 0, 1]);
  });

  it("names the use in its errors", () => {
    expect(() =>
      layoutFromPredicate({
        localTokens: 4,
        blockSize: 0,
        heads: 1,
        reads: () => true,
        where: "layer 2",
      }),
    ).toThrow(ConfigError);
    expect(() =>
      layoutFromPredicate({
        localTokens: 4,
        blockSize: 0,
        heads: 1,
        reads: () => true,
        where: "layer 2",
      }),
    ).toThrow(/layer 2: must be an integer >= 1, got 0/);
  });
});
