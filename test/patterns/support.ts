/**
 * Shared by the pattern-language tests and the mask-equivalence property: the pairs a block
 * layout reads, reconstructed through the attention plan, and library pattern specs sized for
 * small clip grids (the defaults are sized for SViTT's 14 x 14 frames), one or more per entry.
 */
import { attentionPlan, entryReads, layoutHeadOf, planRow } from "../../src/ir/attention-plan.js";
import type { BlockLayout } from "../../src/ir/pattern.js";
import { LIBRARY } from "../../src/patterns/library/index.js";

/** Whether the layout reads (q, k) in head h, from the attention plan's rows and masks. */
export function planReads(
  layout: BlockLayout,
  blockSize: number,
  local: number,
  heads: number,
): (h: number, q: number, k: number) => boolean {
  const plan = attentionPlan(
    { globalTokens: 1, blockSize, layout, origin: { kind: "custom", label: "test" } },
    { batch: 1, tokens: local + 1, hidden: heads, heads },
    "masked",
    null,
  );
  return (h, q, k) => {
    const { first, count } = planRow(plan, layoutHeadOf(plan, h), Math.floor(q / blockSize));
    for (let j = 0; j < count; j++) {
      const e = first + j;
      if (
        plan.keyBlock[e] === Math.floor(k / blockSize) &&
        entryReads(plan, e, q % blockSize, k % blockSize)
      )
        return true;
    }
    return false;
  };
}

/** Every library entry's specs for small grids (LibraryEntry.smallSpecs), in library order. */
export const SMALL_SPECS: readonly string[] = LIBRARY.flatMap((entry) => entry.smallSpecs);
