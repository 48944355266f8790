import { ConfigError } from "../ir/errors.js";
import {
  type BlockLayout,
  layoutProblems,
  maskWords,
  numBlocks,
  tokenProblems,
} from "../ir/pattern.js";

/**
 * A pattern given as a predicate over token pairs, compiled to a block layout: the bridge
 * from "which query reads which key" to the attention plan (src/ir/attention-plan.ts).
 *
 * Tokens are the L local tokens of an attention node in its current order (0 .. L-1);
 * global tokens are not asked about (they read and are read by all). Local tokens are cut
 * into M = ⌈L / bs⌉ blocks; for each layout head h and pair of blocks (query block m, key
 * block kb) the predicate is evaluated on every pair of real tokens, and the pair of blocks
 *   - is left out of row m when no pair is read,
 *   - is a full entry when every pair is read,
 *   - is a partial entry with a bs x bs token mask (BlockLayout.masks) otherwise.
 * Rows list their key blocks in ascending order. Identical masks are stored once. A result
 * whose rows all have the same length and no partial entry is returned in the fixed form.
 *
 * Cost: L² predicate calls per layout head (about 10 M at 16 frames, ~110 ms), unless the
 * spec says per pair of blocks whether none, some or all of its pairs are read (`blocks`):
 * then only the "some" pairs of blocks are asked token by token. For a window or a
 * time-causal pattern at 16-32 frames that is a few percent of the pairs. `blocks` must be
 * sound: "none" only where no real pair is read, "all" only where every one is (the
 * pattern-language tests check each library pattern's bounds against its predicate).
 */
export interface PredicateLayoutSpec {
  readonly localTokens: number;
  readonly blockSize: number;
  /** Layout heads: 1 for a layout shared by every head, else the number of heads. */
  readonly heads: number;
  /** Whether local query `query` of layout head `head` reads local key `key`. */
  readonly reads: (head: number, query: number, key: number) => boolean;
  /** Where the pattern is used, for error messages (e.g. "layer 3 (1568 local tokens)"). */
  readonly where: string;
  /**
   * Optional: whether query block m of layout head `head` reads none, some or all of the
   * real pairs of key block kb ("some" when unsure; see the module comment).
   */
  readonly blocks?: (head: number, m: number, kb: number) => BlockVerdict;
}

/** What a pair of blocks reads: no pair, some pairs, or every real pair. */
export type BlockVerdict = "none" | "some" | "all";

export function layoutFromPredicate(spec: PredicateLayoutSpec): BlockLayout {
  const { localTokens: local, blockSize: bs, heads, reads, where, blocks: verdict } = spec;
  if (!(Number.isInteger(bs) && bs >= 1)) {
    throw new ConfigError("pattern.blockSize", `${where}: must be an integer >= 1, got ${bs}`);
  }
  if (!(Number.isInteger(local) && local >= 1)) {
    throw new ConfigError("pattern", `${where}: needs at least 1 local token, got ${local}`);
  }
  const blocks = numBlocks(local, bs);
  const words = maskWords(bs);
  const rowStart = new Int32Array(heads * blocks + 1);
  const entries: number[] = [];
  const entryMask: number[] = [];
  const masks = new MaskStore(bs * words);
  const scratch = new Uint32Array(bs * words);
  for (let h = 0; h < heads; h++) {
    for (let m = 0; m < blocks; m++) {
      for (let kb = 0; kb < blocks; kb++) {
        const bound = verdict === undefined ? "some" : verdict(h, m, kb);
        if (bound === "none") continue;
        const coverage =
          bound === "all" ? "all" : fillMask(scratch, { h, m, kb, bs, local, words, reads });
        if (coverage === "none") continue;
        entries.push(kb);
        entryMask.push(coverage === "all" ? -1 : masks.add(scratch));
      }
      rowStart[h * blocks + m + 1] = entries.length;
    }
  }
  const layout = compactLayout(heads, blocks, rowStart, entries, entryMask, masks.words());
  const problems = layoutProblems(layout, heads, "masked", bs);
  if (problems.length === 0) {
    problems.push(
      ...tokenProblems(
        { globalTokens: 1, blockSize: bs, layout, origin: { kind: "dense" } },
        local,
      ),
    );
  }
  if (problems.length > 0) throw new ConfigError("pattern", `${where}: ${problems.join("; ")}`);
  return layout;
}

/** The fixed form when every row has the same length and every entry is full, else ragged. */
function compactLayout(
  heads: number,
  blocks: number,
  rowStart: Int32Array,
  entries: readonly number[],
  entryMask: readonly number[],
  masks: Uint32Array,
): BlockLayout {
  const widths = Array.from({ length: heads * blocks }, (_, i) => rowStart[i + 1]! - rowStart[i]!);
  const widest = Math.max(0, ...widths);
  const fixed = widest >= 1 && widths.every((w) => w === widest) && entryMask.every((k) => k < 0);
  if (fixed) {
    return { heads, queryBlocks: blocks, blocksPerRow: widest, blocks: Int32Array.from(entries) };
  }
  return {
    heads,
    queryBlocks: blocks,
    blocksPerRow: widest,
    blocks: Int32Array.from(entries),
    rowStart,
    entryMask: Int32Array.from(entryMask),
    masks,
  };
}

/**
 * Sets `mask` to the token mask of (query block m, key block kb) under layout head h and
 * says whether no, some or every real pair is read.
 */
function fillMask(
  mask: Uint32Array,
  at: {
    h: number;
    m: number;
    kb: number;
    bs: number;
    local: number;
    words: number;
    reads: PredicateLayoutSpec["reads"];
  },
): "none" | "some" | "all" {
  const { h, m, kb, bs, local, words, reads } = at;
  mask.fill(0);
  const rows = Math.min(bs, local - m * bs);
  const keys = Math.min(bs, local - kb * bs);
  let set = 0;
  for (let r = 0; r < rows; r++) {
    const query = m * bs + r;
    for (let t = 0; t < keys; t++) {
      if (!reads(h, query, kb * bs + t)) continue;
      mask[r * words + (t >>> 5)] = (mask[r * words + (t >>> 5)]! | (1 << (t & 31))) >>> 0;
      set++;
    }
  }
  return set === 0 ? "none" : set === rows * keys ? "all" : "some";
}

/** Token masks stored once each; `add` returns the index of an equal mask or a new one. */
class MaskStore {
  private readonly chunks: Uint32Array[] = [];
  private readonly index = new Map<string, number>();

  constructor(private readonly size: number) {}

  add(mask: Uint32Array): number {
    const key = Array.from(mask).join(",");
    const known = this.index.get(key);
    if (known !== undefined) return known;
    this.chunks.push(Uint32Array.from(mask));
    this.index.set(key, this.chunks.length - 1);
    return this.chunks.length - 1;
  }

  words(): Uint32Array {
    const out = new Uint32Array(this.chunks.length * this.size);
    this.chunks.forEach((chunk, i) => {
      out.set(chunk, i * this.size);
    });
    return out;
  }
}
