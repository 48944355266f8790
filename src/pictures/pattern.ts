import {
  type AttentionPattern,
  describePattern,
  maskWords,
  numBlocks,
  rowLength,
  rowOffset,
} from "../ir/pattern.js";
import {
  INK,
  mix,
  type Rgb,
  rect,
  type Scene,
  type SceneItem,
  text,
  textWidth,
  WHITE,
} from "./scene.js";

/**
 * The picture of one attention node's pattern: the block grid (query blocks down, key blocks
 * across; a cell dark where the query block reads the whole key block, shaded by the share
 * of pairs read where it reads part of it, white where it reads none), and, zoomed, the
 * token masks of a few entries (query rows down, key tokens across; padded positions grey),
 * marked on the grid. Global tokens are not drawn: they read and are read by all.
 *
 * Geometry (pixels): margin 16; the title's two lines above; grid cells of
 * c = clamp(⌊420 / M⌋, 2, 14), so the grid is M·c square, at (16, 52); zooms of
 * z = clamp(⌊150 / bs⌋, 1, 8) pixels per token, Z = bs·z square, two per row, 32 right of
 * the grid with 24 between columns and 30 between rows (their label, "q m, k kb": query
 * block m, key block kb, above each); a legend
 * line 12 below the taller of grid and zooms. Width: the zooms' right edge + 16 (or the
 * grid's, the title's or the legend's, whichever is widest); height: the legend's bottom
 * (18 pixels) + 16.
 */

export interface PatternPictureOptions {
  /** L, the layer's local tokens (for padded positions). */
  readonly localTokens: number;
  /** The head whose rows are drawn (per-head layouts; default 0). */
  readonly head?: number;
  /** First title line (default: "attention pattern"). */
  readonly title?: string;
  /** Entries zoomed (default 4; 0 for the grid alone). */
  readonly zoom?: number;
}

const FULL: Rgb = [31, 78, 121];
const PARTIAL_LIGHT: Rgb = [198, 219, 239];
const PARTIAL_DARK: Rgb = [74, 144, 200];
const MASK_CLEAR: Rgb = [238, 243, 248];
const PADDED: Rgb = [210, 210, 210];
const MARK: Rgb = [214, 96, 36];
const GRID_LINE: Rgb = [225, 225, 225];

export interface PatternGeometry {
  readonly cell: number;
  readonly gridX: number;
  readonly gridY: number;
  readonly zoomScale: number;
  readonly zoomSize: number;
  readonly zoomX: number;
  readonly legendY: number;
  readonly width: number;
  readonly height: number;
}

const MARGIN = 16;
const GRID_TOP = 52;

const LEGEND: readonly (readonly [string, Rgb])[] = [
  ["full block", FULL],
  ["partial block", mix(PARTIAL_LIGHT, PARTIAL_DARK, 0.5)],
  ["not read", WHITE],
  ["zoomed", MARK],
  ["padded", PADDED],
];

/** Each legend item: a 12-pixel swatch, 6 pixels, its label, 16 pixels. */
const LEGEND_WIDTH = LEGEND.reduce((sum, [label]) => sum + 18 + textWidth(label, 1) + 16, -16);

/** The picture's geometry for M blocks of bs, `zooms` zoomed entries and a title this wide. */
export function patternGeometry(
  blocks: number,
  blockSize: number,
  zooms: number,
  titleWidth: number,
): PatternGeometry {
  const cell = Math.min(14, Math.max(2, Math.floor(420 / blocks)));
  const grid = blocks * cell;
  const zoomScale = Math.min(8, Math.max(1, Math.floor(150 / blockSize)));
  const zoomSize = blockSize * zoomScale;
  const zoomX = MARGIN + grid + 32;
  const zoomRows = Math.ceil(zooms / 2);
  const zoomHeight = zoomRows === 0 ? 0 : zoomRows * (zoomSize + 30) - 30 + 14;
  const legendY = GRID_TOP + Math.max(grid, zoomHeight) + 12;
  const zoomRight = zooms === 0 ? 0 : zoomX + Math.min(zooms, 2) * (zoomSize + 24) - 24 + MARGIN;
  const width = Math.max(
    MARGIN + grid + MARGIN,
    zoomRight,
    titleWidth + 2 * MARGIN,
    LEGEND_WIDTH + 2 * MARGIN,
  );
  return {
    cell,
    gridX: MARGIN,
    gridY: GRID_TOP,
    zoomScale,
    zoomSize,
    zoomX,
    legendY,
    width,
    height: legendY + 18 + MARGIN,
  };
}

/** One entry of a layout row: its key block and token mask (-1: full). */
interface Entry {
  readonly m: number;
  readonly kb: number;
  readonly mask: number;
}

function entriesOf(pattern: AttentionPattern, head: number): Entry[][] {
  const { layout } = pattern;
  const rows: Entry[][] = [];
  for (let m = 0; m < layout.queryBlocks; m++) {
    const start = rowOffset(layout, head, m);
    const row: Entry[] = [];
    for (let j = 0; j < rowLength(layout, head, m); j++) {
      row.push({ m, kb: layout.blocks[start + j]!, mask: layout.entryMask?.[start + j] ?? -1 });
    }
    rows.push(row);
  }
  return rows;
}

/** Whether query row r of entry e reads key t (real positions only). */
function pairRead(pattern: AttentionPattern, entry: Entry, r: number, t: number): boolean {
  if (entry.mask < 0) return true;
  const bs = pattern.blockSize;
  const words = maskWords(bs);
  const word = pattern.layout.masks![(entry.mask * bs + r) * words + (t >>> 5)]!;
  return ((word >>> (t & 31)) & 1) === 1;
}

/** Real query rows and keys of (m, kb). */
function realSizes(bs: number, local: number, m: number, kb: number): [number, number] {
  return [Math.min(bs, local - m * bs), Math.min(bs, local - kb * bs)];
}

/** The share of real pairs entry e reads. */
function shareRead(pattern: AttentionPattern, entry: Entry, local: number): number {
  if (entry.mask < 0) return 1;
  const [rows, keys] = realSizes(pattern.blockSize, local, entry.m, entry.kb);
  let read = 0;
  for (let r = 0; r < rows; r++)
    for (let t = 0; t < keys; t++) if (pairRead(pattern, entry, r, t)) read++;
  return read / (rows * keys);
}

/** Up to `count` entries to zoom: a partial one (else any) from rows spread over the grid. */
function zoomEntries(rows: readonly Entry[][], count: number): Entry[] {
  const chosen: Entry[] = [];
  const blocks = rows.length;
  for (let i = 0; i < count * 4 && chosen.length < count; i++) {
    const m = Math.min(
      blocks - 1,
      Math.floor(((i % count) * blocks) / count + Math.floor(i / count)),
    );
    const row = rows[m] ?? [];
    const pick =
      row.find((e) => e.mask >= 0 && !chosen.includes(e)) ?? row.find((e) => !chosen.includes(e));
    if (pick !== undefined && !chosen.some((e) => e.m === pick.m && e.kb === pick.kb))
      chosen.push(pick);
  }
  return chosen;
}

export function patternScene(pattern: AttentionPattern, options: PatternPictureOptions): Scene {
  const head = Math.min(options.head ?? 0, pattern.layout.heads - 1);
  const local = options.localTokens;
  const bs = pattern.blockSize;
  const blocks = numBlocks(local, bs);
  const rows = entriesOf(pattern, head);
  const zooms = zoomEntries(rows, options.zoom ?? 4);
  const title = options.title ?? "attention pattern";
  const subtitle = `${describePattern(pattern)}; ${local} tokens${pattern.layout.heads > 1 ? `, head ${head}` : ""}`;
  const geometry = patternGeometry(
    blocks,
    bs,
    zooms.length,
    Math.max(textWidth(title, 2), textWidth(subtitle, 1)),
  );
  const items: SceneItem[] = [
    text(MARGIN, 8, title, 2),
    text(MARGIN, 30, subtitle, 1, [90, 90, 90]),
  ];
  items.push(...gridItems(pattern, rows, local, geometry));
  zooms.forEach((entry, i) => {
    items.push(...zoomItems(pattern, entry, local, geometry, i));
  });
  items.push(...legendItems(geometry));
  return {
    width: geometry.width,
    height: geometry.height,
    background: WHITE,
    items,
    title: `${title}: ${subtitle}`,
  };
}

function gridItems(
  pattern: AttentionPattern,
  rows: readonly Entry[][],
  local: number,
  g: PatternGeometry,
): SceneItem[] {
  const blocks = rows.length;
  const { cell, gridX, gridY } = g;
  const gap = cell >= 6 ? 1 : 0;
  const items: SceneItem[] = [rect(gridX, gridY, blocks * cell, blocks * cell, GRID_LINE)];
  for (let m = 0; m < blocks; m++) {
    const read = new Map<number, number>();
    for (const entry of rows[m]!)
      read.set(entry.kb, Math.max(read.get(entry.kb) ?? 0, shareRead(pattern, entry, local)));
    for (let kb = 0; kb < blocks; kb++) {
      const share = read.get(kb);
      const fill =
        share === undefined ? WHITE : share >= 1 ? FULL : mix(PARTIAL_LIGHT, PARTIAL_DARK, share);
      items.push(rect(gridX + kb * cell, gridY + m * cell, cell - gap, cell - gap, fill));
    }
  }
  return items;
}

function zoomItems(
  pattern: AttentionPattern,
  entry: Entry,
  local: number,
  g: PatternGeometry,
  index: number,
): SceneItem[] {
  const bs = pattern.blockSize;
  const { zoomScale: z, zoomSize } = g;
  const x = g.zoomX + (index % 2) * (zoomSize + 24);
  const y = g.gridY + Math.floor(index / 2) * (zoomSize + 30) + 14;
  const [rows, keys] = realSizes(bs, local, entry.m, entry.kb);
  const items: SceneItem[] = [text(x, y - 12, `q ${entry.m}, k ${entry.kb}`, 1)];
  for (let r = 0; r < bs; r++) {
    // Runs of one colour along the row, one rectangle each.
    let start = 0;
    let current: Rgb | null = null;
    for (let t = 0; t <= bs; t++) {
      const color =
        t === bs
          ? null
          : r >= rows || t >= keys
            ? PADDED
            : pairRead(pattern, entry, r, t)
              ? FULL
              : MASK_CLEAR;
      if (color !== current) {
        if (current !== null)
          items.push(rect(x + start * z, y + r * z, (t - start) * z, z, current));
        current = color;
        start = t;
      }
    }
  }
  // Mark the zoomed cell on the grid: four thin bars around it.
  const { cell, gridX, gridY } = g;
  const cx = gridX + entry.kb * cell;
  const cy = gridY + entry.m * cell;
  const w = Math.max(1, Math.floor(cell / 5));
  items.push(
    rect(cx - w, cy - w, cell + 2 * w, w, MARK),
    rect(cx - w, cy + cell, cell + 2 * w, w, MARK),
    rect(cx - w, cy, w, cell, MARK),
    rect(cx + cell, cy, w, cell, MARK),
  );
  return items;
}

function legendItems(g: PatternGeometry): SceneItem[] {
  const items: SceneItem[] = [];
  let x = MARGIN;
  const y = g.legendY;
  for (const [label, color] of LEGEND) {
    items.push(
      rect(x, y, 12, 12, INK),
      rect(x + 1, y + 1, 10, 10, color),
      text(x + 18, y + 2, label, 1),
    );
    x += 18 + textWidth(label, 1) + 16;
  }
  return items;
}
