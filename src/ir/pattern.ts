/**
 * Attention patterns: the token graph of one attention node, carried as IR data.
 *
 * Token nodes are the N = G + L tokens of a sequence: G global tokens (CLS) first, then L
 * local tokens. Query-to-key edges follow three rules:
 *   - global queries read every key (dense rows);
 *   - every local query reads every global key;
 *   - local tokens are cut into M = ceil(L / blockSize) blocks (the last one zero-padded),
 *     and query block m reads the key blocks listed in row m of the block layout.
 *
 * A block layout has a fixed number of key blocks per row, W. That covers the patterns SViTT
 * and its relatives use (local window + random, strided, dilated, dense) and lets every
 * backend batch the block products as one [M, bs, W*bs] problem; ragged patterns would
 * need a different kernel and are not supported.
 */

/** For each query block, the key blocks it reads: blocks[(h * M + m) * W + j]. */
export interface BlockLayout {
  /** 1 when all heads share the layout, else the number of attention heads. */
  readonly heads: number;
  /** Number of query blocks (M). Self-attention: equal to the number of key blocks. */
  readonly queryBlocks: number;
  /** Key blocks read by each query block (W). */
  readonly blocksPerRow: number;
  /**
   * Key-block indices, [heads, queryBlocks, blocksPerRow]. A row lists each block once,
   * except under padding "reference", where a row may repeat a block (see layoutProblems).
   */
  readonly blocks: Int32Array;
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

/** Key block j of query block m for head h (head is ignored for shared layouts). */
export function layoutBlock(layout: BlockLayout, head: number, m: number, j: number): number {
  const h = layout.heads === 1 ? 0 : head;
  return layout.blocks[(h * layout.queryBlocks + m) * layout.blocksPerRow + j]!;
}

/** Row m of head h as a plain array. */
export function layoutRow(layout: BlockLayout, head: number, m: number): number[] {
  const h = layout.heads === 1 ? 0 : head;
  const start = (h * layout.queryBlocks + m) * layout.blocksPerRow;
  return Array.from(layout.blocks.subarray(start, start + layout.blocksPerRow));
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
 * Problems with a layout that runs under `padding`, as human-readable strings (empty when
 * well formed). Used by the verifier (rule 4), the blockSparseAttention shape rule and
 * pattern constructors.
 */
export function layoutProblems(layout: BlockLayout, heads: number, padding: PaddingMode): string[] {
  const problems: string[] = [];
  const { queryBlocks: m, blocksPerRow: w } = layout;
  const repeats = repeatsAllowed(padding);
  if (!(Number.isInteger(m) && m >= 1)) problems.push(`queryBlocks must be >= 1, got ${m}`);
  if (!(Number.isInteger(w) && w >= 1)) problems.push(`blocksPerRow must be >= 1, got ${w}`);
  if (layout.heads !== 1 && layout.heads !== heads) {
    problems.push(`layout has ${layout.heads} head rows; expected 1 (shared) or ${heads}`);
  }
  if (problems.length > 0) return problems;
  // W > M forces a repeat, so it is only possible where repeats are.
  if (w > m && !repeats) {
    problems.push(
      `blocksPerRow ${w} exceeds the ${m} key blocks available (a block may repeat in a row only under padding "reference")`,
    );
  }
  if (layout.blocks.length !== layout.heads * m * w) {
    problems.push(
      `blocks has ${layout.blocks.length} entries; expected heads*M*W = ${layout.heads * m * w}`,
    );
    return problems;
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

/** Short human description, e.g. "28 blocks x 4 (local 1 + random 3, seed 0), bs 56". */
export function describePattern(pattern: AttentionPattern): string {
  const { layout, origin } = pattern;
  const shape = `${layout.queryBlocks}x${layout.blocksPerRow}`;
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
