import { ShapeError } from "./errors.js";
import type { Node } from "./graph.js";
import type { RelPosBiasAttrs } from "./ops/types.js";
import {
  type AttentionPattern,
  type BlockLayout,
  layoutProblems,
  maskWords,
  type PaddingMode,
  rowLength,
  rowOffset,
  tokenProblems,
} from "./pattern.js";
import { type RelPosLinear, relPosLinear } from "./relpos.js";

/**
 * The attention plan: everything a kernel needs to run one blockSparseAttention node,
 * computed once from its pattern, shapes, padding mode and relative position bias. Every
 * backend lowers from it; none re-derives block geometry.
 *
 * Notation: B batch, N = G + L tokens (G global first), C = H·d hidden, H heads, bs block
 * size, M = ⌈L / bs⌉ query (and key) blocks. Sequence positions are those of the padded
 * sequence G + M·bs: local position p sits at G + p, and G + p >= N is a zero-padded token.
 *
 * Semantics (the reference kernel, backends/reference/kernels/attention.ts, is the oracle):
 * - global query i < G: dense over the N keys;
 * - local query at local position p = m·bs + r (block m, row r) of head h: the G global keys,
 *   then for each entry e of layout row (h, m), in order, the bs key slots t of key block
 *   kb = keyBlock[e] at position G + kb·bs + t. A slot takes part in the softmax as
 *     - a padded key (kb·bs + t >= L): under padding "reference" a zero key (logit 0 + the
 *       token→CLS bias, value 0), under "masked" excluded;
 *     - else, in a partial entry whose token mask has bit (r, t) clear: excluded;
 *     - else: read, logit q·k/√d + bias.
 *   Repeated entries (padding "reference" only) are separate slots: the duplicated-block
 *   softmax. Query rows past L (padding) are computed or skipped at will, never output.
 *
 * Two views serve the two kinds of kernel:
 * - per row (reference, C/WebAssembly): rowStart / keyBlock / entryMask / masks, CSR over
 *   the (layout head, query block) rows, rows of any length, and the bitsets as stored;
 * - per group (backends that batch block products as one [blocks, bs, keys] problem: onnx,
 *   tfjs, gpu.js): query blocks grouped by their row width (the widest over layout heads),
 *   each group a rectangular problem whose shorter rows are filled with excluded slots, with
 *   its slot positions, slot kinds and, where partial blocks occur, a per-row exclusion map.
 *   A fixed layout is one group of all M blocks in order, exactly today's batched problem.
 *
 * Relative position bias: `relPos` is the linear form (src/ir/relpos.ts), table row
 * code(a) - code(c) + offset between local tokens, so kernels keep their one subtraction
 * per pair; the token index itself is run-time data (or a constant a backend may fold).
 */

/** How a key slot of a local query row takes part in its softmax (see the file comment). */
export const SLOT_READ = 0;
export const SLOT_ZERO_KEY = 1;
export const SLOT_EXCLUDED = 2;

export interface AttentionShapes {
  readonly batch: number;
  readonly tokens: number;
  readonly hidden: number;
  readonly heads: number;
}

/** Query blocks whose rows are batched as one rectangular problem. */
export interface BlockGroup {
  /** The query blocks m of the group, ascending. */
  readonly blocks: Int32Array;
  /** Key blocks per row (the widest row of the group over layout heads) and key slots G + W·bs. */
  readonly width: number;
  readonly keys: number;
  /** [layoutHeads, blocks, keys]: the padded-sequence position of each key slot (0 for fill). */
  readonly keyPos: Int32Array;
  /** [layoutHeads, blocks, keys]: SLOT_READ, SLOT_ZERO_KEY or SLOT_EXCLUDED (fill included). */
  readonly slotKind: Uint8Array;
  /** Whether some slot is SLOT_EXCLUDED, so that a kernel needs a mask at all. */
  readonly anyExcluded: boolean;
  /**
   * [layoutHeads, blocks, bs, keys]: 1 where query row r does not read the slot (its slot
   * is excluded, or a partial block's mask clears the pair); null when the group has no
   * partial block (slotKind then says everything).
   */
  readonly rowExcluded: Uint8Array | null;
}

export interface AttentionPlan {
  readonly batch: number;
  readonly tokens: number;
  readonly hidden: number;
  readonly heads: number;
  readonly headDim: number;
  readonly globalTokens: number;
  readonly blockSize: number;
  readonly localTokens: number;
  readonly queryBlocks: number;
  /** Local tokens after padding, M·bs, and the padded sequence length G + M·bs. */
  readonly paddedLocal: number;
  readonly paddedTokens: number;
  readonly padding: PaddingMode;
  /** 1 for a layout shared by the heads, else H. */
  readonly layoutHeads: number;
  /** [layoutHeads·M + 1]: row (hl, m) holds entries rowStart[hl·M + m] .. rowStart[hl·M + m + 1] - 1. */
  readonly rowStart: Int32Array;
  /** Key block of each entry. */
  readonly keyBlock: Int32Array;
  /** Per entry: -1 for a full block, else its token mask in `masks` (never one that sets every real pair). */
  readonly entryMask: Int32Array;
  /** Token masks [count, bs, maskWords] as in BlockLayout.masks. */
  readonly masks: Uint32Array;
  readonly maskWords: number;
  /** Entries of the longest row, and whether every row has that many (a fixed layout). */
  readonly widestRow: number;
  readonly uniformRows: boolean;
  /** Entries that are partial blocks. */
  readonly partialEntries: number;
  /** Whether the last block has padded positions (L not a multiple of bs). */
  readonly paddedKeys: boolean;
  readonly relPos: RelPosLinear | null;
  /** The batched view: groups covering every query block once. */
  readonly groups: readonly BlockGroup[];
  /** Whether there is one group holding blocks 0 .. M-1 in order. */
  readonly singleGroup: boolean;
}

const plans = new WeakMap<AttentionPattern, Map<string, AttentionPlan>>();

/**
 * The plan of a blockSparseAttention node with `pattern` over q of shape [batch, tokens,
 * hidden] split into `heads`, under `padding`, with or without a bias. Memoised per pattern
 * and arguments. Throws ShapeError when the pattern does not fit (the shape rule's checks).
 */
export function attentionPlan(
  pattern: AttentionPattern,
  shapes: AttentionShapes,
  padding: PaddingMode,
  relPosBias: RelPosBiasAttrs | null,
): AttentionPlan {
  const key = `${shapes.batch},${shapes.tokens},${shapes.hidden},${shapes.heads},${padding},${relPosBias?.window.join("x") ?? "-"}`;
  let byArgs = plans.get(pattern);
  if (byArgs === undefined) {
    byArgs = new Map();
    plans.set(pattern, byArgs);
  }
  const known = byArgs.get(key);
  if (known !== undefined) return known;
  const plan = buildPlan(pattern, shapes, padding, relPosBias);
  byArgs.set(key, plan);
  return plan;
}

/** The plan of a blockSparseAttention node, from its attributes and output shape [B, N, C]. */
export function attentionPlanOf(node: Node<"blockSparseAttention">): AttentionPlan {
  const [batch, tokens, hidden] = node.outputs[0]!.shape as [number, number, number];
  const { pattern, heads, padding, relPosBias } = node.attrs;
  return attentionPlan(pattern, { batch, tokens, hidden, heads }, padding, relPosBias);
}

function buildPlan(
  pattern: AttentionPattern,
  shapes: AttentionShapes,
  padding: PaddingMode,
  relPosBias: RelPosBiasAttrs | null,
): AttentionPlan {
  const { batch, tokens, hidden, heads } = shapes;
  const g = pattern.globalTokens;
  const bs = pattern.blockSize;
  const { layout } = pattern;
  const local = tokens - g;
  const problems = [
    ...layoutProblems(layout, heads, padding, bs),
    ...(Number.isInteger(g) && g >= 1 && g < tokens
      ? []
      : [`global tokens ${g} must be in [1, ${tokens - 1}]`]),
  ];
  if (problems.length === 0) problems.push(...tokenProblems(pattern, local));
  if (problems.length > 0) throw new ShapeError(`attention plan: ${problems.join("; ")}`);
  const { rowStart, keyBlock } = csrRows(layout);
  const entryMask = fullOrPartial(pattern, rowStart, keyBlock, local);
  const base = {
    batch,
    tokens,
    hidden,
    heads,
    headDim: hidden / heads,
    globalTokens: g,
    blockSize: bs,
    localTokens: local,
    queryBlocks: layout.queryBlocks,
    paddedLocal: layout.queryBlocks * bs,
    paddedTokens: g + layout.queryBlocks * bs,
    padding,
    layoutHeads: layout.heads,
    rowStart,
    keyBlock,
    entryMask,
    masks: layout.masks ?? new Uint32Array(0),
    maskWords: maskWords(bs),
    ...rowWidths(rowStart),
    partialEntries: entryMask.filter((k) => k >= 0).length,
    paddedKeys: local % bs !== 0,
    relPos: relPosBias === null ? null : relPosLinear(relPosBias.window),
  };
  const groups = blockGroups(base);
  return { ...base, groups, singleGroup: groups.length === 1 };
}

/** The layout's rows as CSR over (layout head, query block): offsets and key blocks. */
function csrRows(layout: BlockLayout): { rowStart: Int32Array; keyBlock: Int32Array } {
  const rows = layout.heads * layout.queryBlocks;
  const rowStart = new Int32Array(rows + 1);
  for (let row = 0; row < rows; row++) {
    const [hl, m] = [Math.floor(row / layout.queryBlocks), row % layout.queryBlocks];
    rowStart[row + 1] = rowStart[row]! + rowLength(layout, hl, m);
  }
  const keyBlock = new Int32Array(rowStart[rows]!);
  for (let row = 0; row < rows; row++) {
    const [hl, m] = [Math.floor(row / layout.queryBlocks), row % layout.queryBlocks];
    const from = rowOffset(layout, hl, m);
    keyBlock.set(layout.blocks.subarray(from, from + rowLength(layout, hl, m)), rowStart[row]!);
  }
  return { rowStart, keyBlock };
}

/** Per CSR entry: its token mask, or -1 for a full block (a mask setting every real pair too). */
function fullOrPartial(
  pattern: AttentionPattern,
  rowStart: Int32Array,
  keyBlock: Int32Array,
  local: number,
): Int32Array {
  const { layout, blockSize: bs } = pattern;
  const entryMask = new Int32Array(keyBlock.length).fill(-1);
  if (layout.entryMask === undefined || layout.masks === undefined) return entryMask;
  for (let row = 0; row < rowStart.length - 1; row++) {
    const [hl, m] = [Math.floor(row / layout.queryBlocks), row % layout.queryBlocks];
    const from = rowOffset(layout, hl, m);
    for (let e = rowStart[row]!; e < rowStart[row + 1]!; e++) {
      const mask = layout.entryMask[from + e - rowStart[row]!]!;
      const full = mask < 0 || setsEveryPair(layout.masks, mask, bs, m, keyBlock[e]!, local);
      entryMask[e] = full ? -1 : mask;
    }
  }
  return entryMask;
}

/** The widest row's length, and whether every row has it. */
function rowWidths(rowStart: Int32Array): { widestRow: number; uniformRows: boolean } {
  let widestRow = 0;
  let uniformRows = true;
  for (let row = 0; row + 1 < rowStart.length; row++) {
    const length = rowStart[row + 1]! - rowStart[row]!;
    if (row > 0 && length !== widestRow) uniformRows = false;
    widestRow = Math.max(widestRow, length);
  }
  return { widestRow, uniformRows };
}

/** Whether token mask `mask` of (query block m, key block kb) sets every pair of real tokens. */
function setsEveryPair(
  masks: Uint32Array,
  mask: number,
  bs: number,
  m: number,
  kb: number,
  local: number,
): boolean {
  const rows = Math.min(bs, local - m * bs);
  const keys = Math.min(bs, local - kb * bs);
  const words = maskWords(bs);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < keys; t++) {
      if (((masks[(mask * bs + r) * words + (t >>> 5)]! >>> (t & 31)) & 1) === 0) return false;
    }
  }
  return true;
}

// ---- per-row view ---------------------------------------------------------------------------

type RowView = Pick<
  AttentionPlan,
  | "globalTokens"
  | "blockSize"
  | "localTokens"
  | "queryBlocks"
  | "padding"
  | "layoutHeads"
  | "rowStart"
  | "keyBlock"
  | "entryMask"
  | "masks"
  | "maskWords"
  | "tokens"
>;

/** The layout head of attention head h: 0 for shared layouts. */
export function layoutHeadOf(plan: Pick<AttentionPlan, "layoutHeads">, h: number): number {
  return plan.layoutHeads === 1 ? 0 : h;
}

/** Entries first .. first + count - 1 of the row of query block m under layout head hl. */
export function planRow(plan: RowView, hl: number, m: number): { first: number; count: number } {
  const row = hl * plan.queryBlocks + m;
  const first = plan.rowStart[row]!;
  return { first, count: plan.rowStart[row + 1]! - first };
}

/** Whether query row r of its query block reads key t of entry e's block (masks only). */
export function entryReads(plan: RowView, entry: number, r: number, t: number): boolean {
  const mask = plan.entryMask[entry]!;
  if (mask < 0) return true;
  const bs = plan.blockSize;
  return ((plan.masks[(mask * bs + r) * plan.maskWords + (t >>> 5)]! >>> (t & 31)) & 1) === 1;
}

/** SLOT_READ for a real key, else what the padding mode makes of a padded one. */
export function paddedSlotKind(plan: Pick<AttentionPlan, "padding">): number {
  return plan.padding === "reference" ? SLOT_ZERO_KEY : SLOT_EXCLUDED;
}

/**
 * The key slots of row (hl, m), G + count·bs of them: their padded-sequence positions and
 * kinds (SLOT_READ or, for padded keys, paddedSlotKind). Partial masks are per query row:
 * see entryReads.
 */
export function rowSlots(
  plan: RowView,
  hl: number,
  m: number,
): { positions: Int32Array; kinds: Uint8Array } {
  const { globalTokens: g, blockSize: bs, localTokens: local } = plan;
  const { first, count } = planRow(plan, hl, m);
  const positions = new Int32Array(g + count * bs);
  const kinds = new Uint8Array(positions.length);
  const padded = paddedSlotKind(plan);
  for (let s = 0; s < g; s++) positions[s] = s;
  for (let j = 0; j < count; j++) {
    const kb = plan.keyBlock[first + j]!;
    for (let t = 0; t < bs; t++) {
      const p = kb * bs + t;
      positions[g + j * bs + t] = g + p;
      kinds[g + j * bs + t] = p < local ? SLOT_READ : padded;
    }
  }
  return { positions, kinds };
}

// ---- batched view ---------------------------------------------------------------------------

type GroupInputs = Omit<AttentionPlan, "groups" | "singleGroup">;

/** Query blocks grouped by row width (widest over layout heads), groups in order of first use. */
function blockGroups(plan: GroupInputs): BlockGroup[] {
  const { queryBlocks: blocks, layoutHeads } = plan;
  const byWidth = new Map<number, number[]>();
  for (let m = 0; m < blocks; m++) {
    let width = 0;
    for (let hl = 0; hl < layoutHeads; hl++) width = Math.max(width, planRow(plan, hl, m).count);
    const list = byWidth.get(width) ?? [];
    list.push(m);
    byWidth.set(width, list);
  }
  return [...byWidth].map(([width, list]) => buildGroup(plan, Int32Array.from(list), width));
}

function buildGroup(plan: GroupInputs, blocks: Int32Array, width: number): BlockGroup {
  const { globalTokens: g, blockSize: bs, layoutHeads } = plan;
  const keys = g + width * bs;
  const count = blocks.length;
  const keyPos = new Int32Array(layoutHeads * count * keys);
  const slotKind = new Uint8Array(keyPos.length).fill(SLOT_EXCLUDED);
  let partial = false;
  for (let hl = 0; hl < layoutHeads; hl++) {
    for (let i = 0; i < count; i++) {
      const m = blocks[i]!;
      const slots = rowSlots(plan, hl, m);
      const at = (hl * count + i) * keys;
      keyPos.set(slots.positions, at);
      slotKind.set(slots.kinds, at);
      const { first, count: entries } = planRow(plan, hl, m);
      for (let j = 0; j < entries; j++) if (plan.entryMask[first + j]! >= 0) partial = true;
    }
  }
  const anyExcluded = slotKind.includes(SLOT_EXCLUDED);
  const rowExcluded = partial ? rowExclusions(plan, blocks, keys, slotKind) : null;
  return { blocks, width, keys, keyPos, slotKind, anyExcluded, rowExcluded };
}

/** [layoutHeads, blocks, bs, keys]: excluded slots, plus the pairs partial masks clear. */
function rowExclusions(
  plan: GroupInputs,
  blocks: Int32Array,
  keys: number,
  slotKind: Uint8Array,
): Uint8Array {
  const { globalTokens: g, blockSize: bs, layoutHeads } = plan;
  const count = blocks.length;
  const out = new Uint8Array(layoutHeads * count * bs * keys);
  for (let hl = 0; hl < layoutHeads; hl++) {
    for (let i = 0; i < count; i++) {
      const kinds = slotKind.subarray((hl * count + i) * keys, (hl * count + i + 1) * keys);
      const { first, count: entries } = planRow(plan, hl, blocks[i]!);
      for (let r = 0; r < bs; r++) {
        const row = out.subarray(
          ((hl * count + i) * bs + r) * keys,
          ((hl * count + i) * bs + r + 1) * keys,
        );
        for (let s = 0; s < keys; s++) row[s] = kinds[s] === SLOT_EXCLUDED ? 1 : 0;
        for (let j = 0; j < entries; j++) {
          if (plan.entryMask[first + j]! < 0) continue;
          for (let t = 0; t < bs; t++) {
            const s = g + j * bs + t;
            if (kinds[s] === SLOT_READ && !entryReads(plan, first + j, r, t)) row[s] = 1;
          }
        }
      }
    }
  }
  return out;
}

/**
 * Where each query block m lands when the groups' blocks are concatenated in group order:
 * the gather indices that put per-group results back in block order.
 */
export function concatenatedOrder(plan: AttentionPlan): Int32Array {
  const order = new Int32Array(plan.queryBlocks);
  let at = 0;
  for (const group of plan.groups) for (const m of group.blocks) order[m] = at++;
  return order;
}

// ---- cost ----------------------------------------------------------------------------------

/**
 * What the plan computes, summed over the layout heads (1 for a shared layout): query-key
 * pairs formed, the global rows' G·N per layout head plus, per query block, bs rows (padded
 * ones included: they are computed and discarded) times its G + count·bs key slots (partial
 * blocks in full: they are computed, then masked); and the slots the real local queries form.
 * See src/cost.ts for the convention.
 */
export function computedPairs(plan: RowView): { pairs: number; localQuerySlots: number } {
  const { globalTokens: g, blockSize: bs, queryBlocks: blocks, layoutHeads, localTokens } = plan;
  let pairs = layoutHeads * g * plan.tokens;
  let localQuerySlots = 0;
  for (let hl = 0; hl < layoutHeads; hl++) {
    for (let m = 0; m < blocks; m++) {
      const slots = g + planRow(plan, hl, m).count * bs;
      pairs += bs * slots;
      localQuerySlots += Math.min(bs, localTokens - m * bs) * slots;
    }
  }
  return { pairs, localQuerySlots };
}
