/**
 * Attention patterns: the token graph of one attention node, carried as IR data.
 *
 * Token nodes are the N = G + L tokens of a sequence: G global tokens (CLS) first, then L
 * local tokens. Query-to-key edges follow three rules:
 *   - global queries read every key (dense rows);
 *   - every local query reads every global key;
 *   - local tokens are cut into M = ceil(L / blockSize) blocks (the last one zero-padded),
 *     and query block m reads the key blocks listed in row m of the block layout: all bs x bs
 *     token pairs of a full block, or those a partial block's token mask sets.
 *
 * Two forms of layout, one structure:
 *   - fixed: every row lists W = blocksPerRow key blocks, every block full. SViTT's patterns
 *     (local window + random), strided, dilated and dense layouts are fixed.
 *   - ragged: rows have different lengths (rowStart), and entries may be partial blocks
 *     whose bs x bs token masks are stored as bitsets (entryMask, masks). A pattern given as
 *     a predicate over token pairs compiles to this form (src/patterns/predicate.ts).
 * Kernels never read layouts directly: src/ir/attention-plan.ts derives what they need.
 */

/**
 * For each query block, the key blocks it reads. Entries are stored row after row, rows in
 * (layout head, query block) order: entry j of row (h, m) is blocks[rowStart[h·M + m] + j],
 * with rowStart[i] = i·W when rowStart is absent (a fixed layout: blocks is [heads, M, W]).
 */
export interface BlockLayout {
  /** 1 when all heads share the layout, else the number of attention heads. */
  readonly heads: number;
  /** Number of query blocks (M). Self-attention: equal to the number of key blocks. */
  readonly queryBlocks: number;
  /**
   * Key blocks read by each query block (W): of every row in a fixed layout; of the widest
   * row in a ragged one.
   */
  readonly blocksPerRow: number;
  /**
   * Key-block index of each entry. A row lists each block once, except under padding
   * "reference", where a row may repeat a block (see layoutProblems).
   */
  readonly blocks: Int32Array;
  /**
   * Ragged layouts: heads·M + 1 non-decreasing offsets from 0 to blocks.length; row i holds
   * entries rowStart[i] .. rowStart[i + 1] - 1 (a row may be empty: its queries read the
   * global tokens only). Absent: every row holds blocksPerRow entries.
   */
  readonly rowStart?: Int32Array;
  /**
   * Partial blocks: for each entry, -1 (a full block) or the index of its token mask in
   * masks. Absent: every entry is a full block.
   */
  readonly entryMask?: Int32Array;
  /**
   * Token masks, [count, bs, maskWords(bs)] 32-bit words: query row r of the query block
   * reads key t of the key block when bit t % 32 of word (r, ⌊t / 32⌋) is set. Bits of padded
   * positions (a query or key past the L local tokens) are 0: padded keys follow the padding
   * mode alone, padded queries are discarded (verifier rule 5).
   */
  readonly masks?: Uint32Array;
}

/** 32-bit words per query row of a token mask: ⌈bs / 32⌉. */
export function maskWords(blockSize: number): number {
  return Math.ceil(blockSize / 32);
}

/** Whether the layout has rows of different lengths or partial blocks. */
export function isRagged(layout: BlockLayout): boolean {
  return layout.rowStart !== undefined || layout.entryMask !== undefined;
}

/** Index of the first entry of row m of head h (head is ignored for shared layouts). */
export function rowOffset(layout: BlockLayout, head: number, m: number): number {
  const row = (layout.heads === 1 ? 0 : head) * layout.queryBlocks + m;
  return layout.rowStart === undefined ? row * layout.blocksPerRow : layout.rowStart[row]!;
}

/** Number of key blocks row m of head h reads. */
export function rowLength(layout: BlockLayout, head: number, m: number): number {
  if (layout.rowStart === undefined) return layout.blocksPerRow;
  const row = (layout.heads === 1 ? 0 : head) * layout.queryBlocks + m;
  return layout.rowStart[row + 1]! - layout.rowStart[row]!;
}

/** Key block j of query block m for head h (head is ignored for shared layouts). */
export function layoutBlock(layout: BlockLayout, head: number, m: number, j: number): number {
  return layout.blocks[rowOffset(layout, head, m) + j]!;
}

/** Row m of head h as a plain array. */
export function layoutRow(layout: BlockLayout, head: number, m: number): number[] {
  const start = rowOffset(layout, head, m);
  return Array.from(layout.blocks.subarray(start, start + rowLength(layout, head, m)));
}

/** How a layout was made; informs reports and printers, never semantics. */
export type PatternOrigin =
  | {
      readonly kind: "svitt";
      readonly local: number;
      readonly random: number;
      readonly seed: number | null;
    }
  | { readonly kind: "dense" }
  | { readonly kind: "custom"; readonly label: string };

export interface AttentionPattern {
  /** Global (CLS) tokens at the front of the sequence: they read and are read by all. */
  readonly globalTokens: number;
  /** Tokens per block (bs). */
  readonly blockSize: number;
  readonly layout: BlockLayout;
  readonly origin: PatternOrigin;
}

/**
 * What happens to the zero-padded key positions of the last block.
 * - "reference": as in the authors' code, padded keys are zero vectors that stay in the
 *   softmax (logit = 0 + bias), absorbing probability mass; their values are zero.
 * - "masked": padded keys are excluded from the softmax (the clean semantics).
 */
export type PaddingMode = "reference" | "masked";

export const PADDING_MODES: readonly PaddingMode[] = ["reference", "masked"];

export function numBlocks(localTokens: number, blockSize: number): number {
  return Math.ceil(localTokens / blockSize);
}

/**
 * Whether a row of a layout may read the same key block more than once. Only under padding
 * "reference": there a repeated block reproduces the authors' duplicated-block softmax. When
 * their `sparse_attention` is asked for more random blocks than there are non-local blocks
 * (random > M - local), its topk over the zeroed local entries picks local blocks again, so
 * the row reads a block twice and that block's bs keys (and values, and bias entries) take
 * part in the softmax twice:
 *   p_s = exp(l_s) / Σ_{s'} exp(l_{s'}) over the row's key slots s, a repeated block filling
 *   two runs of bs slots with the same logits, and context = Σ_s p_s v_s.
 * Under "masked" (the clean semantics) every key is read once, so a repeat is an error.
 */
export function repeatsAllowed(padding: PaddingMode): boolean {
  return padding === "reference";
}

/**
 * Problems with a layout's structure under `padding`, as human-readable strings (empty when
 * well formed; at most a few row-level ones). Used by the verifier (rule 4), the
 * blockSparseAttention shape rule and pattern constructors. `blockSize` enables the checks
 * of the token masks' storage (rule 5, tokenProblems, checks their bits).
 */
export function layoutProblems(
  layout: BlockLayout,
  heads: number,
  padding: PaddingMode,
  blockSize?: number,
): string[] {
  const problems: string[] = [];
  const { queryBlocks: m, blocksPerRow: w } = layout;
  const ragged = isRagged(layout);
  if (!(Number.isInteger(m) && m >= 1)) problems.push(`queryBlocks must be >= 1, got ${m}`);
  // A ragged layout may have only empty rows (W = 0); a fixed one reads at least a block.
  const minWidth = ragged ? 0 : 1;
  if (!(Number.isInteger(w) && w >= minWidth)) {
    problems.push(`blocksPerRow must be >= ${minWidth}, got ${w}`);
  }
  if (layout.heads !== 1 && layout.heads !== heads) {
    problems.push(`layout has ${layout.heads} head rows; expected 1 (shared) or ${heads}`);
  }
  if (problems.length > 0) return problems;
  const rows = layout.heads * m;
  if (layout.rowStart === undefined) {
    if (layout.blocks.length !== rows * w) {
      problems.push(`blocks has ${layout.blocks.length} entries; expected heads*M*W = ${rows * w}`);
    }
  } else {
    problems.push(...rowStartProblems(layout.rowStart, rows, layout.blocks.length, w));
  }
  if (layout.entryMask !== undefined || layout.masks !== undefined) {
    problems.push(...maskStorageProblems(layout, blockSize));
  }
  if (problems.length > 0) return problems;
  problems.push(...rowProblems(layout, padding));
  return problems;
}

/** rowStart: rows + 1 offsets, 0 first, non-decreasing, `entries` last, widest row W. */
function rowStartProblems(
  rowStart: Int32Array,
  rows: number,
  entries: number,
  width: number,
): string[] {
  if (rowStart.length !== rows + 1) {
    return [`rowStart has ${rowStart.length} offsets; expected heads*M + 1 = ${rows + 1}`];
  }
  if (rowStart[0] !== 0 || rowStart[rows] !== entries) {
    return [
      `rowStart must run from 0 to the ${entries} entries of blocks, runs from ${rowStart[0]} to ${rowStart[rows]}`,
    ];
  }
  let widest = 0;
  for (let i = 0; i < rows; i++) {
    const length = rowStart[i + 1]! - rowStart[i]!;
    if (length < 0)
      return [`rowStart decreases at row ${i} (${rowStart[i]} to ${rowStart[i + 1]})`];
    widest = Math.max(widest, length);
  }
  if (widest !== width) {
    return [
      `blocksPerRow is ${width} but the widest row of the ragged layout has ${widest} blocks`,
    ];
  }
  return [];
}

/** entryMask and masks: present together, one tag per entry, indices into whole masks. */
function maskStorageProblems(layout: BlockLayout, blockSize: number | undefined): string[] {
  const { entryMask, masks } = layout;
  if (entryMask === undefined || masks === undefined) {
    return ["entryMask and masks must be given together (partial blocks need both)"];
  }
  if (entryMask.length !== layout.blocks.length) {
    return [
      `entryMask has ${entryMask.length} entries; expected one per block entry (${layout.blocks.length})`,
    ];
  }
  if (blockSize === undefined || !(Number.isInteger(blockSize) && blockSize >= 1)) return [];
  const perMask = blockSize * maskWords(blockSize);
  if (masks.length % perMask !== 0) {
    return [
      `masks has ${masks.length} words, not a whole number of ${blockSize}x${blockSize} token masks (${perMask} words each)`,
    ];
  }
  const count = masks.length / perMask;
  const bad = entryMask.findIndex((k) => !(Number.isInteger(k) && k >= -1 && k < count));
  if (bad >= 0) {
    return [
      `entry ${bad} names token mask ${entryMask[bad]}, outside [-1, ${count}) (-1: a full block)`,
    ];
  }
  return [];
}

/** Per row: block indices in [0, M) and, outside padding "reference", no repeats. */
function rowProblems(layout: BlockLayout, padding: PaddingMode): string[] {
  const problems: string[] = [];
  const m = layout.queryBlocks;
  const repeats = repeatsAllowed(padding);
  // A row wider than M forces a repeat, so it is only possible where repeats are.
  if (!isRagged(layout) && layout.blocksPerRow > m && !repeats) {
    problems.push(
      `blocksPerRow ${layout.blocksPerRow} exceeds the ${m} key blocks available (a block may repeat in a row only under padding "reference")`,
    );
  }
  for (let h = 0; h < layout.heads && problems.length < 4; h++) {
    for (let row = 0; row < m && problems.length < 4; row++) {
      const seen = new Set<number>();
      const reported = new Set<number>();
      for (const block of layoutRow(layout, h, row)) {
        if (!(Number.isInteger(block) && block >= 0 && block < m)) {
          problems.push(`head ${h} query block ${row} reads key block ${block}, outside [0, ${m})`);
        } else if (seen.has(block) && !repeats && !reported.has(block)) {
          problems.push(
            `head ${h} query block ${row} reads key block ${block} more than once (a block may repeat in a row only under padding "reference", not "${padding}")`,
          );
          reported.add(block);
        }
        seen.add(block);
      }
    }
  }
  return problems;
}

/**
 * Problems with a pattern against the L local tokens it runs on (verifier rule 5): block
 * size >= 1, M = ceil(L / bs), and for each partial block a token mask that sets at least
 * one bit and none at a padded position (query or key at local position >= L). Assumes a
 * layout without rule-4 problems.
 */
export function tokenProblems(pattern: AttentionPattern, localTokens: number): string[] {
  const { blockSize: bs, layout } = pattern;
  if (!(Number.isInteger(bs) && bs >= 1)) {
    return [`attention pattern block size ${bs} must be >= 1`];
  }
  const expected = numBlocks(localTokens, bs);
  if (layout.queryBlocks !== expected) {
    return [
      `layout has ${layout.queryBlocks} query blocks; ${localTokens} local tokens in blocks of ${bs} need ${expected}`,
    ];
  }
  if (layout.entryMask === undefined || layout.masks === undefined) return [];
  const problems: string[] = [];
  for (let h = 0; h < layout.heads && problems.length < 4; h++) {
    for (let m = 0; m < layout.queryBlocks && problems.length < 4; m++) {
      const start = rowOffset(layout, h, m);
      const length = rowLength(layout, h, m);
      for (let j = 0; j < length && problems.length < 4; j++) {
        const mask = layout.entryMask[start + j]!;
        if (mask < 0) continue;
        const detail = maskProblem(
          layout.masks,
          mask,
          bs,
          m,
          layout.blocks[start + j]!,
          localTokens,
        );
        if (detail !== null) {
          problems.push(
            `head ${h} query block ${m} key block ${layout.blocks[start + j]}: ${detail}`,
          );
        }
      }
    }
  }
  return problems;
}

/** What is wrong with token mask `mask` of the pair (query block m, key block kb), or null. */
function maskProblem(
  masks: Uint32Array,
  mask: number,
  bs: number,
  m: number,
  kb: number,
  localTokens: number,
): string | null {
  const words = maskWords(bs);
  const realRows = Math.min(bs, localTokens - m * bs);
  const realKeys = Math.min(bs, localTokens - kb * bs);
  let set = 0;
  for (let r = 0; r < bs; r++) {
    for (let w = 0; w < words; w++) {
      const word = masks[(mask * bs + r) * words + w]!;
      if (word === 0) continue;
      // Bits at keys t >= realKeys of this word, or any bit of a padded query row.
      const first = w * 32;
      const keep =
        realKeys <= first ? 0 : realKeys >= first + 32 ? 0xffffffff : (1 << (realKeys - first)) - 1;
      if (r >= realRows || (word & ~keep) !== 0) {
        return `token mask ${mask} sets a bit at a padded position (query row ${r}, ${localTokens} local tokens); padding is governed by the padding mode alone`;
      }
      set += popcount(word);
    }
  }
  return set === 0 ? `token mask ${mask} is empty (list only blocks that are read)` : null;
}

function popcount(word: number): number {
  let x = word >>> 0;
  let count = 0;
  while (x !== 0) {
    x &= x - 1;
    count++;
  }
  return count;
}

/**
 * Short human description, e.g. "block 56, layout 28x4 (local 1 + random 3, seed 0)"; a
 * ragged layout shows its row lengths and partial blocks: "layout 28x(3..12), 170 partial".
 */
export function describePattern(pattern: AttentionPattern): string {
  const { layout, origin } = pattern;
  const shape = isRagged(layout)
    ? `${layout.queryBlocks}x(${rowRange(layout)})${partialCount(layout) > 0 ? `, ${partialCount(layout)} partial` : ""}`
    : `${layout.queryBlocks}x${layout.blocksPerRow}`;
  const heads = layout.heads === 1 ? "" : `, per-head(${layout.heads})`;
  let how: string;
  switch (origin.kind) {
    case "svitt":
      how = `local ${origin.local} + random ${origin.random}${origin.seed === null ? ", given" : `, seed ${origin.seed}`}`;
      break;
    case "dense":
      how = "all blocks";
      break;
    case "custom":
      how = origin.label;
      break;
    default:
      how = origin satisfies never;
  }
  return `block ${pattern.blockSize}, layout ${shape} (${how})${heads}`;
}

/** "min..max" (or "W") of a layout's row lengths. */
function rowRange(layout: BlockLayout): string {
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  for (let h = 0; h < layout.heads; h++) {
    for (let m = 0; m < layout.queryBlocks; m++) {
      const length = rowLength(layout, h, m);
      min = Math.min(min, length);
      max = Math.max(max, length);
    }
  }
  return min === max ? `${max}` : `${min}..${max}`;
}

/** Entries of the layout that are partial blocks. */
export function partialCount(layout: BlockLayout): number {
  return layout.entryMask === undefined ? 0 : layout.entryMask.filter((k) => k >= 0).length;
}
