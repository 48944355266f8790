import {
  GLYPH_HEIGHT,
  INK,
  type Rgb,
  rect,
  type Scene,
  type SceneItem,
  text,
  textWidth,
  WHITE,
} from "./scene.js";

/**
 * A scatter plot scene (`sprig explore`'s plot): one colour per series, each point a square
 * with a short label beside it, axes with round-numbered ticks, and a legend on the right.
 */
export interface PlotSeries {
  readonly name: string;
  readonly points: readonly { readonly x: number; readonly y: number; readonly label: string }[];
}

export interface ScatterOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly PlotSeries[];
  /** Plot area in pixels (default 560 x 360). */
  readonly plotWidth?: number;
  readonly plotHeight?: number;
}

const PALETTE: readonly Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

const LEFT = 80;
const TOP = 50;
const BOTTOM = 56;
const LEGEND_GAP = 24;
const POINT = 9;

interface Box {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/** About `count` round-numbered ticks covering [lo, hi] (steps of 1, 2 or 5 x 10^n). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const rough = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

function range(values: readonly number[]): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!(hi > lo)) {
    const pad = Math.abs(lo) * 0.05 || 0.5;
    lo -= pad;
    hi += pad;
  }
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

function tickText(value: number, ticks: readonly number[]): string {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : 1;
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return value.toFixed(decimals);
}

export function scatterScene(options: ScatterOptions): Scene {
  const width = options.plotWidth ?? 560;
  const height = options.plotHeight ?? 360;
  const points = options.series.flatMap((s) => s.points);
  const [x0, x1] = range(points.map((p) => p.x));
  const [y0, y1] = range(points.map((p) => p.y));
  const px = (x: number) => LEFT + ((x - x0) / (x1 - x0)) * width;
  const py = (y: number) => TOP + height - ((y - y0) / (y1 - y0)) * height;
  const items: SceneItem[] = [text(LEFT, 14, options.title, 2)];
  // Axes and ticks.
  items.push(rect(LEFT, TOP, 1, height, INK), rect(LEFT, TOP + height, width, 1, INK));
  const xTicks = niceTicks(x0, x1);
  for (const v of xTicks) {
    const label = tickText(v, xTicks);
    items.push(
      rect(px(v), TOP + height, 1, 5, INK),
      rect(px(v), TOP, 1, height, [238, 238, 238]),
      text(px(v) - textWidth(label, 1) / 2, TOP + height + 9, label, 1),
    );
  }
  const yTicks = niceTicks(y0, y1);
  for (const v of yTicks) {
    const label = tickText(v, yTicks);
    items.push(
      rect(LEFT - 5, py(v), 5, 1, INK),
      rect(LEFT + 1, py(v), width - 1, 1, [238, 238, 238]),
      text(LEFT - 9 - textWidth(label, 1), py(v) - 3, label, 1),
    );
  }
  items.push(
    text(LEFT + width / 2 - textWidth(options.xLabel, 1) / 2, TOP + height + 30, options.xLabel, 1),
    text(8, TOP - 18, options.yLabel, 1),
  );
  // Points, then their labels where they overlap neither a point nor an earlier label.
  const placed: Box[] = [];
  const marks: { x: number; y: number; color: Rgb; label: string }[] = [];
  options.series.forEach((series, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    for (const p of series.points) {
      const cx = px(p.x);
      const cy = py(p.y);
      placed.push({ x: cx - POINT / 2, y: cy - POINT / 2, w: POINT, h: POINT });
      marks.push({ x: cx, y: cy, color, label: p.label });
      items.push(
        rect(cx - (POINT + 2) / 2, cy - (POINT + 2) / 2, POINT + 2, POINT + 2, WHITE),
        rect(cx - POINT / 2, cy - POINT / 2, POINT, POINT, color),
      );
    }
  });
  for (const mark of marks) {
    if (mark.label === "") continue;
    const w = textWidth(mark.label, 1);
    const spot = [0, 12, -12, 24, -24, 36, -36]
      .map((dy) => ({ x: mark.x + POINT, y: mark.y - 4 + dy, w, h: GLYPH_HEIGHT }))
      .find((box) => !placed.some((other) => overlaps(box, other)));
    const box = spot ?? { x: mark.x + POINT, y: mark.y - 4, w, h: GLYPH_HEIGHT };
    placed.push(box);
    items.push(text(box.x, box.y + 1, mark.label, 1, mark.color));
  }
  const legendX = LEFT + width + LEGEND_GAP;
  let legendWidth = 0;
  options.series.forEach((series, i) => {
    const y = TOP + i * (GLYPH_HEIGHT + 10);
    items.push(
      rect(legendX, y, POINT, POINT, PALETTE[i % PALETTE.length]!),
      text(legendX + POINT + 6, y + 1, series.name, 1),
    );
    legendWidth = Math.max(legendWidth, POINT + 6 + textWidth(series.name, 1));
  });
  return {
    width: Math.max(legendX + legendWidth + 16, LEFT + textWidth(options.title, 2) + 16),
    height: TOP + height + BOTTOM,
    background: WHITE,
    items,
    title: options.title,
  };
}
