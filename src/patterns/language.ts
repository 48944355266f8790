import { ConfigError } from "../ir/errors.js";
import type { BlockLayout, PaddingMode } from "../ir/pattern.js";
import { maskWords, numBlocks } from "../ir/pattern.js";
import { type BlockVerdict, layoutFromPredicate } from "./predicate.js";
import { Rng } from "./random.js";

/**
 * The pattern language: an attention pattern is a predicate over pairs of tokens, compiled
 * at compile time, for each layer's own token count, to the block layout the attention plan
 * is made from (src/ir/attention-plan.ts).
 *
 * What a predicate sees. Each local token of a layer is a Token: its index in the layer's
 * current token order (0 .. L-1: after a token drop, among the kept tokens; after token
 * reordering, along the curve) and its frame, patch row and patch column (t, y, x) in the
 * clip. The predicate also gets the attention head. Global tokens (CLS) are never asked
 * about: in every pattern they read every token and every token reads them, because the plan
 * keeps their rows and columns dense (token pruning needs the CLS row whole). A pattern makes
 * more tokens global by reading them both ways (BigBird's `q.index < g || k.index < g`).
 *
 * Where (t, y, x) come from, per layer (LayerTokens, `coordinates`):
 *   - "exact": no token has been dropped before the layer, so local position i holds the
 *     token the graph's token index names (the raster order, or the z-curve / Hilbert order
 *     of reorder-tokens);
 *   - "spread": after a token drop, which tokens survive is run-time data (top-k of the CLS
 *     attention), but a static plan needs coordinates now. The kept tokens are an ascending
 *     subsequence of the layer-0 order, so position i of L kept out of L0 is given the
 *     coordinates of layer-0 position ⌊i·L0 / L⌋: where the i-th survivor would sit if the
 *     survivors were spread evenly (the spread the attention benchmark feeds as its token
 *     index, src/models/beit.ts spreadTokenIndex). A pattern over t, y, x is then an
 *     approximation of itself at those layers, and the pattern's label says so; patterns over
 *     the token order (index) are exact at every layer. `afterDrop: "error"` refuses instead;
 *   - "none": the graph has no clip grid (a text encoder): t, y, x are NaN, and a pattern
 *     that needs them is an error.
 *
 * Random blocks are drawn once, at compile time, from the seed and the layer's stream (and
 * the head when random draws are per head), so a compiled graph is static and reproducible.
 *
 * Speed: a predicate is asked about every pair of tokens of the pairs of blocks its `blocks`
 * bound (optional) cannot decide from the blocks' coordinate ranges (TokenBox); library
 * patterns give bounds, so compiling a window at 32 frames asks about a few percent of the
 * L² pairs.
 */

/** One local token of a layer, as a predicate sees it. */
export interface Token {
  /** Position in the layer's current token order, 0 .. L-1. */
  readonly index: number;
  /** Frame, patch row and patch column in the clip (NaN when the layer has no grid). */
  readonly t: number;
  readonly y: number;
  readonly x: number;
}

/** The ranges of the tokens of one block: min and max of each coordinate, and the block. */
export interface TokenBox {
  readonly block: number;
  readonly index: readonly [number, number];
  readonly t: readonly [number, number];
  readonly y: readonly [number, number];
  readonly x: readonly [number, number];
}

/** How a layer's coordinates were found (see the module comment). */
export type Coordinates = "exact" | "spread" | "none";

/** The local tokens of one layer. */
export interface LayerTokens {
  /** The clip's token grid (T, Hp, Wp), or null without one. */
  readonly grid: readonly [number, number, number] | null;
  readonly coordinates: Coordinates;
  readonly tokens: readonly Token[];
}

/** Everything a pattern is told about the attention node it is compiled for. */
export interface PatternContext {
  readonly localTokens: number;
  readonly blockSize: number;
  /** Attention heads of the node. */
  readonly heads: number;
  readonly tokens: LayerTokens;
  /** Seed and stream of random draws ("attention/layer3"). */
  readonly seed: number;
  readonly stream: string;
  /** Whether random draws differ per head (sparsity.attention.perHead). */
  readonly perHeadRandom: boolean;
  readonly padding: PaddingMode;
  /** Where the pattern is used, for messages: "layer 3 (1568 local tokens)". */
  readonly where: string;
}

/** A pattern compiled for one layer. */
export interface LayerPredicate {
  /** Whether the answer depends on the head (then each head gets its own layout rows). */
  readonly perHead: boolean;
  /** Whether query q reads key k in head `head` (local tokens only). */
  readonly reads: (q: Token, k: Token, head: number) => boolean;
  /**
   * Optional and sound: "none" only when no pair of the two boxes is read, "all" only when
   * every pair is; "some" when unsure.
   */
  readonly blocks?: (q: TokenBox, k: TokenBox, head: number) => BlockVerdict;
  /**
   * Optional, for per-head predicates: heads of one class read the same pairs, so their
   * layout rows are compiled once (heads(a; b) over 12 heads: 2 classes). Absent: each head
   * is its own class.
   */
  readonly headClass?: (head: number) => string;
}

/** An attention pattern of the language. */
export interface Pattern {
  /** What reports and pictures call it: "window3d 3x7x7", "svitt + causal". */
  readonly label: string;
  /** Whether it reads t, y, x ("grid") or only the token order ("order"). */
  readonly needs: "order" | "grid";
  /** The pattern at one layer. */
  readonly at: (context: PatternContext) => LayerPredicate;
  /**
   * Optional: the layout itself, used when the pattern stands alone (not inside a
   * combinator). SViTT's pattern has one: its rows keep the authors' block order and, under
   * padding "reference", their repeated blocks, which a predicate cannot say.
   */
  readonly layout?: (context: PatternContext) => BlockLayout;
  /**
   * Whether it draws random blocks (from the context's seed and per-layer stream): then
   * layers of one token count still get layouts of their own; otherwise one is compiled
   * per token count and shared.
   */
  readonly seeded?: boolean;
}

/** A predicate over a pair of tokens and the head, as users write them. */
export type TokenPredicate = (q: Token, k: Token, head: number) => boolean;

/**
 * A pattern from a plain predicate (and optionally its block bound). It reads t, y, x
 * unless `needs` says "order"; it depends on the head when `perHead` is true.
 */
export function definePattern(options: {
  readonly label: string;
  readonly reads: TokenPredicate;
  readonly blocks?: (q: TokenBox, k: TokenBox, head: number) => BlockVerdict;
  readonly needs?: "order" | "grid";
  readonly perHead?: boolean;
}): Pattern {
  const { label, reads, blocks } = options;
  const compiled: LayerPredicate = {
    perHead: options.perHead ?? false,
    reads,
    ...(blocks === undefined ? {} : { blocks }),
  };
  return { label, needs: options.needs ?? "grid", at: () => compiled };
}

// ---- combinators ---------------------------------------------------------------------------

const needsOf = (patterns: readonly Pattern[]): "order" | "grid" =>
  patterns.some((p) => p.needs === "grid") ? "grid" : "order";

/** Patterns made by union, intersection or difference (their labels get parentheses inside others). */
const combined = new WeakSet<Pattern>();

function isCombined(pattern: Pattern): boolean {
  return combined.has(pattern);
}

/** The bound of a part that has none. */
const unsure = (): BlockVerdict => "some";

/** Pairs read by any of `patterns`. */
export function union(...patterns: readonly Pattern[]): Pattern {
  return combine(patterns, " + ", (parts) => ({
    reads: (q, k, h) => parts.some((p) => p.reads(q, k, h)),
    blocks: (q, k, h) => {
      let verdict: BlockVerdict = "none";
      for (const part of parts) {
        const v = (part.blocks ?? unsure)(q, k, h);
        if (v === "all") return "all";
        if (v === "some") verdict = "some";
      }
      return verdict;
    },
  }));
}

/** Pairs read by every one of `patterns`. */
export function intersection(...patterns: readonly Pattern[]): Pattern {
  return combine(patterns, " & ", (parts) => ({
    reads: (q, k, h) => parts.every((p) => p.reads(q, k, h)),
    blocks: (q, k, h) => {
      let verdict: BlockVerdict = "all";
      for (const part of parts) {
        const v = (part.blocks ?? unsure)(q, k, h);
        if (v === "none") return "none";
        if (v === "some") verdict = "some";
      }
      return verdict;
    },
  }));
}

/** Pairs `a` reads and `b` does not. */
export function difference(a: Pattern, b: Pattern): Pattern {
  return combine([a, b], " - ", ([p, q]) => ({
    reads: (x, y, h) => p!.reads(x, y, h) && !q!.reads(x, y, h),
    blocks: (x, y, h) => {
      const left = (p!.blocks ?? unsure)(x, y, h);
      const right = (q!.blocks ?? unsure)(x, y, h);
      if (left === "none" || right === "all") return "none";
      return left === "all" && right === "none" ? "all" : "some";
    },
  }));
}

function combine(
  patterns: readonly Pattern[],
  operator: string,
  merge: (parts: readonly LayerPredicate[]) => Omit<LayerPredicate, "perHead">,
): Pattern {
  if (patterns.length === 0) {
    throw new ConfigError("pattern", `"${operator.trim()}" needs at least one pattern`);
  }
  if (patterns.length === 1) return patterns[0]!;
  const result: Pattern = {
    label: patterns.map((p) => (isCombined(p) ? `(${p.label})` : p.label)).join(operator),
    needs: needsOf(patterns),
    seeded: patterns.some((p) => p.seeded === true),
    at: (context) => {
      const parts = patterns.map((p) => p.at(context));
      const perHeadParts = parts.some((p) => p.perHead);
      return {
        perHead: perHeadParts,
        ...merge(parts),
        ...(perHeadParts
          ? { headClass: (h: number) => parts.map((p) => classOf(p, h)).join("|") }
          : {}),
      };
    },
  };
  combined.add(result);
  return result;
}

/** The head class of a compiled part (see LayerPredicate.headClass). */
function classOf(part: LayerPredicate, head: number): string {
  if (!part.perHead) return "*";
  return part.headClass === undefined ? `h${head}` : part.headClass(head);
}

/**
 * Different heads, different patterns: the H heads are cut into n = patterns.length
 * consecutive groups of nearly equal size, head h reading with pattern ⌊h·n / H⌋ (with
 * 12 heads and 3 patterns: heads 0-3, 4-7, 8-11). n may not exceed H.
 */
export function perHead(patterns: readonly Pattern[]): Pattern {
  if (patterns.length === 0) throw new ConfigError("pattern", "heads(...) needs a pattern");
  return {
    label: `heads(${patterns.map((p) => p.label).join("; ")})`,
    needs: needsOf(patterns),
    seeded: patterns.some((p) => p.seeded === true),
    at: (context) => {
      const n = patterns.length;
      const heads = context.heads;
      if (n > heads) {
        throw new ConfigError(
          "pattern",
          `${context.where}: heads(...) lists ${n} patterns for ${heads} attention heads (at most one per head)`,
        );
      }
      const parts = patterns.map((p) => p.at(context));
      const groupOf = (h: number) => Math.floor((h * n) / heads);
      const partOf = (h: number) => parts[groupOf(h)]!;
      return {
        perHead: true,
        reads: (q, k, h) => partOf(h).reads(q, k, h),
        blocks: (q, k, h) => (partOf(h).blocks ?? unsure)(q, k, h),
        headClass: (h) => `${groupOf(h)}:${classOf(partOf(h), h)}`,
      };
    },
  };
}

// ---- layer tokens ----------------------------------------------------------------------------

/**
 * The local tokens of a layer with `localTokens` tokens, from the clip's grid and the
 * layer-0 token order (`order[i]`: the raster index t·Hp·Wp + y·Wp + x of local position i,
 * as the graph's token index holds it; null: the raster order itself). See the module
 * comment for "exact", "spread" and "none".
 */
export function layerTokens(
  localTokens: number,
  grid: readonly [number, number, number] | null,
  order: Int32Array | null,
): LayerTokens {
  if (grid === null) {
    const tokens = Array.from({ length: localTokens }, (_, index) => ({
      index,
      t: Number.NaN,
      y: Number.NaN,
      x: Number.NaN,
    }));
    return { grid: null, coordinates: "none", tokens };
  }
  const [, rows, cols] = grid;
  const first = order?.length ?? grid[0] * rows * cols;
  if (localTokens > first) {
    throw new ConfigError(
      "pattern",
      `a layer with ${localTokens} local tokens is longer than the clip's ${first} (${grid.join("x")} grid)`,
    );
  }
  const coordinates: Coordinates = localTokens === first ? "exact" : "spread";
  const tokens: Token[] = new Array(localTokens);
  for (let index = 0; index < localTokens; index++) {
    const at = coordinates === "exact" ? index : Math.floor((index * first) / localTokens);
    const raster = order === null ? at : order[at]!;
    const t = Math.floor(raster / (rows * cols));
    const rest = raster - t * rows * cols;
    tokens[index] = { index, t, y: Math.floor(rest / cols), x: rest % cols };
  }
  return { grid, coordinates, tokens };
}

/** The coordinate ranges of each block of bs consecutive tokens. */
export function tokenBoxes(tokens: readonly Token[], blockSize: number): TokenBox[] {
  const boxes: TokenBox[] = [];
  for (let block = 0; block * blockSize < tokens.length; block++) {
    const members = tokens.slice(block * blockSize, (block + 1) * blockSize);
    const range = (pick: (t: Token) => number): [number, number] => {
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      for (const token of members) {
        lo = Math.min(lo, pick(token));
        hi = Math.max(hi, pick(token));
      }
      return [lo, hi];
    };
    boxes.push({
      block,
      index: range((t) => t.index),
      t: range((t) => t.t),
      y: range((t) => t.y),
      x: range((t) => t.x),
    });
  }
  return boxes;
}

// ---- compiling -----------------------------------------------------------------------------

export interface PatternCompileOptions {
  /** Refuse a pattern over t, y, x at a layer whose coordinates are spread (default false). */
  readonly exactCoordinatesOnly?: boolean;
  /** Ask the predicate about every pair, ignoring block bounds (for testing the bounds). */
  readonly ignoreBounds?: boolean;
}

/** The block layout of `pattern` for the layer `context` describes. */
export function compilePattern(
  pattern: Pattern,
  context: PatternContext,
  options: PatternCompileOptions = {},
): BlockLayout {
  checkCoordinates(pattern, context, options);
  if (pattern.layout !== undefined) return pattern.layout(context);
  const compiled = pattern.at(context);
  const { tokens } = context.tokens;
  const boxes = tokenBoxes(tokens, context.blockSize);
  const bound = compiled.blocks;
  const layoutOfHead = (head: number) =>
    layoutFromPredicate({
      localTokens: context.localTokens,
      blockSize: context.blockSize,
      heads: 1,
      reads: (_h, q, k) => compiled.reads(tokens[q]!, tokens[k]!, head),
      ...(bound === undefined || options.ignoreBounds === true
        ? {}
        : { blocks: (_h: number, m: number, kb: number) => bound(boxes[m]!, boxes[kb]!, head) }),
      where: `${context.where}, pattern ${pattern.label}`,
    });
  if (!compiled.perHead) return layoutOfHead(0);
  // One layout per head class, stacked into the per-head form.
  const classes = Array.from({ length: context.heads }, (_, h) => classOf(compiled, h));
  const distinct = [...new Set(classes)];
  if (distinct.length === 1) return layoutOfHead(0);
  const layouts = new Map(distinct.map((c) => [c, layoutOfHead(classes.indexOf(c))]));
  return stackHeads(
    classes.map((c) => layouts.get(c)!),
    context.blockSize,
  );
}

/**
 * The per-head layout whose head h has the rows of `perHeadLayouts[h]` (each shared by the
 * heads, of the same queryBlocks); token masks of one layout object are stored once.
 */
export function stackHeads(perHeadLayouts: readonly BlockLayout[], blockSize: number): BlockLayout {
  const blocks = perHeadLayouts[0]!.queryBlocks;
  const perMask = blockSize * maskWords(blockSize);
  const maskBase = new Map<BlockLayout, number>();
  const maskChunks: Uint32Array[] = [];
  let maskWordsSoFar = 0;
  const rowStart = new Int32Array(perHeadLayouts.length * blocks + 1);
  const entries: number[] = [];
  const entryMask: number[] = [];
  let partial = false;
  perHeadLayouts.forEach((layout, h) => {
    if (layout.masks !== undefined && !maskBase.has(layout)) {
      maskBase.set(layout, maskWordsSoFar / perMask);
      maskChunks.push(layout.masks);
      maskWordsSoFar += layout.masks.length;
    }
    for (let m = 0; m < blocks; m++) {
      const from = layout.rowStart === undefined ? m * layout.blocksPerRow : layout.rowStart[m]!;
      const to =
        layout.rowStart === undefined ? from + layout.blocksPerRow : layout.rowStart[m + 1]!;
      for (let e = from; e < to; e++) {
        entries.push(layout.blocks[e]!);
        const mask = layout.entryMask?.[e] ?? -1;
        if (mask >= 0) partial = true;
        entryMask.push(mask < 0 ? -1 : mask + (maskBase.get(layout) ?? 0));
      }
      rowStart[h * blocks + m + 1] = entries.length;
    }
  });
  let widest = 0;
  for (let i = 0; i + 1 < rowStart.length; i++)
    widest = Math.max(widest, rowStart[i + 1]! - rowStart[i]!);
  const uniform = !partial && widest >= 1 && rowStart.every((v, i) => v === i * widest);
  const base = {
    heads: perHeadLayouts.length,
    queryBlocks: blocks,
    blocksPerRow: widest,
    blocks: Int32Array.from(entries),
  };
  if (uniform) return base;
  const masks = new Uint32Array(maskWordsSoFar);
  let at = 0;
  for (const chunk of maskChunks) {
    masks.set(chunk, at);
    at += chunk.length;
  }
  return { ...base, rowStart, entryMask: Int32Array.from(entryMask), masks };
}

function checkCoordinates(
  pattern: Pattern,
  context: PatternContext,
  options: PatternCompileOptions,
) {
  if (pattern.needs !== "grid") return;
  const { coordinates } = context.tokens;
  if (coordinates === "none") {
    throw new ConfigError(
      "pattern",
      `${context.where}: pattern ${pattern.label} reads token coordinates (t, y, x), but this attention has no clip grid`,
    );
  }
  if (coordinates === "spread" && options.exactCoordinatesOnly === true) {
    throw new ConfigError(
      "pattern",
      `${context.where}: pattern ${pattern.label} reads token coordinates (t, y, x), which after a token drop are run-time data; drop no tokens before this layer, or allow spread coordinates`,
    );
  }
}

/** The label a layer's pattern carries: the pattern's, and how its coordinates were found. */
export function layerLabel(pattern: Pattern, context: PatternContext): string {
  return pattern.needs === "grid" && context.tokens.coordinates === "spread"
    ? `${pattern.label}; t, y, x spread over the kept tokens`
    : pattern.label;
}

/** The context of a layer with the usual defaults, for tests, pictures and examples. */
export function patternContext(options: {
  readonly localTokens: number;
  readonly blockSize: number;
  readonly heads?: number;
  readonly grid?: readonly [number, number, number] | null;
  readonly order?: Int32Array | null;
  readonly seed?: number;
  readonly stream?: string;
  readonly perHeadRandom?: boolean;
  readonly padding?: PaddingMode;
  readonly where?: string;
}): PatternContext {
  const grid = options.grid ?? null;
  return {
    localTokens: options.localTokens,
    blockSize: options.blockSize,
    heads: options.heads ?? 1,
    tokens: layerTokens(options.localTokens, grid, options.order ?? null),
    seed: options.seed ?? 0,
    stream: options.stream ?? "attention/pattern",
    perHeadRandom: options.perHeadRandom ?? false,
    padding: options.padding ?? "masked",
    where: options.where ?? `${options.localTokens} local tokens`,
  };
}

// ---- helpers for patterns -----------------------------------------------------------------

/**
 * Seeded random key blocks: for each (layout head, query block m), `count` distinct blocks
 * drawn uniformly from those `excluded(m)` does not list, sorted ascending (fewer when fewer
 * are left). Drawn once per call, from the context's seed and stream (+ `label`), per head
 * when the context's random draws are.
 */
export function seededBlocks(
  context: PatternContext,
  count: number,
  excluded: (m: number) => readonly number[],
  label: string,
): { readonly perHead: boolean; readonly has: (head: number, m: number, kb: number) => boolean } {
  const blocks = numBlocks(context.localTokens, context.blockSize);
  const heads = context.perHeadRandom ? context.heads : 1;
  const chosen: Set<number>[][] = [];
  for (let h = 0; h < heads; h++) {
    const rng = Rng.stream(context.seed, `${context.stream}/${label}/head${h}`);
    const rows: Set<number>[] = [];
    for (let m = 0; m < blocks; m++) {
      const skip = new Set(excluded(m));
      const pool: number[] = [];
      for (let b = 0; b < blocks; b++) if (!skip.has(b)) pool.push(b);
      const take = Math.min(count, pool.length);
      // Partial Fisher-Yates: the first `take` entries become a uniform sample.
      for (let i = 0; i < take; i++) {
        const j = i + rng.below(pool.length - i);
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      }
      rows.push(new Set(pool.slice(0, take)));
    }
    chosen.push(rows);
  }
  return {
    perHead: heads > 1,
    has: (head, m, kb) => chosen[heads > 1 ? head : 0]![m]!.has(kb),
  };
}

/** The block of a token. */
export function blockOf(token: Token, blockSize: number): number {
  return Math.floor(token.index / blockSize);
}

/**
 * The verdict of a pattern that reads whole blocks: a box is one block, so "all" or "none"
 * is exact.
 */
export function wholeBlocks(read: boolean): BlockVerdict {
  return read ? "all" : "none";
}

export type { BlockVerdict } from "./predicate.js";
