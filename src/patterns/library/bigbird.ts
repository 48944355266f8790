import { ConfigError } from "../../ir/errors.js";
import { numBlocks } from "../../ir/pattern.js";
import {
  blockOf,
  type LayerPredicate,
  type PatternContext,
  seededBlocks,
  wholeBlocks,
} from "../language.js";
import { intParam, type LibraryEntry } from "./entry.js";

/**
 * BigBird's block-sparse attention (Zaheer et al., "Big Bird: Transformers for Longer
 * Sequences", NeurIPS 2020; the ITC variant, and DeepSpeed's BigBird layout): over the token
 * order,
 *   - global: the first `global` tokens read every key and are read by every query (the
 *     CLS token is global as in every sprig pattern, besides these);
 *   - window: query block m reads key blocks m - ⌊window/2⌋ .. m + ⌊window/2⌋ (not wrapping
 *     around, unlike SViTT's roll);
 *   - random: `random` further key blocks per query block, drawn once from the seed among
 *     the blocks outside the window and the global tokens' blocks (per head with perHead).
 * The paper's defaults (block 64: 2 global blocks, 3 window blocks, 3 random blocks) become,
 * at SViTT's block 56, global = 112 tokens, window = 3, random = 3.
 */
export const bigbird: LibraryEntry = {
  name: "bigbird",
  summary: "global tokens + a window of blocks + seeded random blocks (BigBird)",
  source: "BigBird ITC (Zaheer et al., NeurIPS 2020)",
  params: [
    { name: "global", kind: "int", default: 112, min: 0, help: "first tokens made global" },
    { name: "window", kind: "int", default: 3, min: 1, odd: true, help: "window in blocks" },
    { name: "random", kind: "int", default: 3, min: 0, help: "random blocks per query block" },
  ],
  smallSpecs: ["bigbird:global=4,window=1,random=1"],
  make: (params) => {
    const global = intParam(params, "global");
    const window = intParam(params, "window");
    const random = intParam(params, "random");
    return {
      label: `bigbird global=${global} window=${window} random=${random}`,
      needs: "order",
      seeded: true,
      at: (context) => bigbirdAt(context, global, window, random),
    };
  },
};

function bigbirdAt(
  context: PatternContext,
  global: number,
  window: number,
  random: number,
): LayerPredicate {
  const bs = context.blockSize;
  const blocks = numBlocks(context.localTokens, bs);
  if (window > 2 * blocks - 1) {
    throw new ConfigError(
      "pattern",
      `${context.where}: bigbird window ${window} is wider than the ${blocks} blocks can use`,
    );
  }
  const half = (window - 1) / 2;
  const inWindow = (m: number, kb: number) => Math.abs(m - kb) <= half;
  // Blocks made wholly of global tokens are read anyway: no random draw lands there.
  const globalBlocks = Math.floor(global / bs);
  const drawn = seededBlocks(
    context,
    random,
    (m) => {
      const out: number[] = [];
      for (let b = 0; b < blocks; b++) if (inWindow(m, b) || b < globalBlocks) out.push(b);
      return out;
    },
    "bigbird",
  );
  const blockRead = (h: number, m: number, kb: number) => inWindow(m, kb) || drawn.has(h, m, kb);
  return {
    perHead: drawn.perHead,
    reads: (q, k, h) =>
      q.index < global || k.index < global || blockRead(h, blockOf(q, bs), blockOf(k, bs)),
    blocks: (q, k, h) => {
      if (q.index[1] < global || k.index[1] < global) return "all";
      if (blockRead(h, q.block, k.block)) return "all";
      // Outside window and random: only the global tokens among them are read.
      return q.index[0] < global || k.index[0] < global ? "some" : wholeBlocks(false);
    },
  };
}
