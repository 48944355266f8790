/**
 * Shared by the pattern-language tests and the mask-equivalence property: the pairs a block
 * layout reads, reconstructed through the attention plan, and library pattern specs sized for
 * small clip grids (the defaults are sized for SViTT's 14 x 14 frames), one or more per entry.
 */
import { attentionPlan, entryReads, layoutHeadOf, planRow } from "../../src/ir/attention-plan.js";
import type { BlockLayout } from "../../src/ir/pattern.js";

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

/**
 * Specs for grids of a few frames of 3-6 x 3-6 patches: every library entry, with
 * parameters that neither read everything nor nothing there.
 */
export const SMALL_SPECS: readonly string[] = [
  "svitt:local=1,random=1",
  "dense",
  "window:w=5",
  "window3d:3x3x3",
  "window3d:kernel=1x3x3,dilation=1x2x1",
  "divided",
  "strided:stride=12,local=2",
  "dilated:w=3,d=3",
  "bigbird:global=4,window=1,random=1",
  "causal",
  "causal:frames=1",
];
