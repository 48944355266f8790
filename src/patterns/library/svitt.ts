import type { BlockLayout } from "../../ir/pattern.js";
import { layoutRow } from "../../ir/pattern.js";
import { blockOf, type PatternContext, wholeBlocks } from "../language.js";
import { svittLayout } from "../layouts.js";
import { intParam, type LibraryEntry } from "./entry.js";

/**
 * SViTT's pattern (Li, Min, Tripathi and Vasconcelos, "SViTT: Temporal Learning of Sparse
 * Video-Text Transformers", CVPR 2023; the authors' `sparse_attention` in
 * models/sparse_xbeit.py): query block m reads the `local` blocks around it, (m + r) mod M,
 * and `random` further blocks drawn once from the seed (per head with perHead), as
 * src/patterns/layouts.ts states in full. Alone, the pattern is the authors' layout itself
 * (their block order, and under padding "reference" the blocks a saturated row reads twice),
 * so it stays conformance-exact; inside a combinator it is the predicate "k's block is in
 * q's block's row" (a repeat cannot be said there).
 */
export const svitt: LibraryEntry = {
  name: "svitt",
  summary: "the local blocks around each query block and seeded random blocks (SViTT)",
  source: "SViTT (Li et al., CVPR 2023), models/sparse_xbeit.py sparse_attention",
  params: [
    { name: "local", kind: "int", default: 1, min: 0, odd: true, help: "local window in blocks" },
    { name: "random", kind: "int", default: 3, min: 0, help: "random blocks per query block" },
  ],
  smallSpecs: ["svitt:local=1,random=1"],
  make: (params) => {
    const local = intParam(params, "local");
    const random = intParam(params, "random");
    const layout = (context: PatternContext): BlockLayout =>
      svittLayout(
        {
          localTokens: context.localTokens,
          blockSize: context.blockSize,
          local,
          random,
          heads: context.perHeadRandom ? context.heads : 1,
          randomBlocks: { seed: context.seed, stream: context.stream },
          padding: context.padding,
        },
        context.where,
      );
    return {
      label: `svitt local ${local} + random ${random}`,
      needs: "order",
      seeded: true,
      layout,
      at: (context) => {
        const rows = layout(context);
        const sets: Set<number>[][] = [];
        for (let h = 0; h < rows.heads; h++) {
          sets.push(
            Array.from({ length: rows.queryBlocks }, (_, m) => new Set(layoutRow(rows, h, m))),
          );
        }
        const row = (h: number, m: number) => sets[rows.heads === 1 ? 0 : h]![m]!;
        const bs = context.blockSize;
        return {
          perHead: rows.heads > 1,
          reads: (q, k, h) => row(h, blockOf(q, bs)).has(blockOf(k, bs)),
          blocks: (q, k, h) => wholeBlocks(row(h, q.block).has(k.block)),
        };
      },
    };
  },
};
