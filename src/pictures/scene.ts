/**
 * Pictures as scenes: a width, a height, a background and a list of filled rectangles and
 * text lines, in pixels from the top left. One scene renders to SVG (svg.ts, any
 * environment) and to PNG (png.ts, Node), so both files show the same picture. Text is
 * drawn in one monospace face: in PNG the 5 x 7 bitmap font of font.ts, scaled.
 */

export type Rgb = readonly [number, number, number];

export interface Rect {
  readonly kind: "rect";
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly fill: Rgb;
}

export interface TextLine {
  readonly kind: "text";
  /** Left end of the line and top of its glyphs. */
  readonly x: number;
  readonly y: number;
  readonly text: string;
  /** Glyph scale: each of the font's 5 x 7 pixels is `scale` x `scale` pixels. */
  readonly scale: number;
  readonly fill: Rgb;
}

export type SceneItem = Rect | TextLine;

export interface Scene {
  readonly width: number;
  readonly height: number;
  readonly background: Rgb;
  readonly items: readonly SceneItem[];
  /** A short description (the SVG's title). */
  readonly title: string;
}

/** Pixels per glyph cell of the bitmap font: 5 x 7 glyphs in 6 x 9 cells. */
export const GLYPH_ADVANCE = 6;
export const GLYPH_HEIGHT = 9;

export function rect(x: number, y: number, width: number, height: number, fill: Rgb): Rect {
  return { kind: "rect", x, y, width, height, fill };
}

export function text(x: number, y: number, line: string, scale = 2, fill: Rgb = INK): TextLine {
  return { kind: "text", x, y, text: line, scale, fill };
}

/** The width in pixels of `line` at `scale`. */
export function textWidth(line: string, scale = 2): number {
  return line.length * GLYPH_ADVANCE * scale;
}

export const INK: Rgb = [34, 34, 34];
export const WHITE: Rgb = [255, 255, 255];

/** a + (b - a)·f per channel, rounded. */
export function mix(a: Rgb, b: Rgb, f: number): Rgb {
  const at = (i: 0 | 1 | 2) => Math.round(a[i] + (b[i] - a[i]) * f);
  return [at(0), at(1), at(2)];
}
