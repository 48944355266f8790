import { PNG } from "pngjs";
import { glyph } from "./font.js";
import { GLYPH_ADVANCE, type Rgb, type Scene } from "./scene.js";

/**
 * Scenes and RGBA images as PNG files, encoded by pngjs (pure JavaScript, no native build,
 * the long-kept PNG codec of the npm registry; it uses Node's zlib, so this module is for
 * Node only). Text is drawn with the bitmap font of font.ts.
 */

/** An RGBA raster: width x height pixels, 4 bytes each, rows top to bottom. */
export interface Raster {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export function newRaster(width: number, height: number, background: Rgb): Raster {
  const raster = { width, height, data: new Uint8Array(width * height * 4) };
  fillRect(raster, 0, 0, width, height, background);
  return raster;
}

/** Fills the rectangle (clipped to the raster). */
export function fillRect(
  raster: Raster,
  x: number,
  y: number,
  width: number,
  height: number,
  color: Rgb,
): void {
  const x0 = Math.max(0, Math.round(x));
  const y0 = Math.max(0, Math.round(y));
  const x1 = Math.min(raster.width, Math.round(x + width));
  const y1 = Math.min(raster.height, Math.round(y + height));
  const [r, g, b] = color;
  const { data } = raster;
  for (let row = y0; row < y1; row++) {
    for (
      let at = (row * raster.width + x0) * 4, end = (row * raster.width + x1) * 4;
      at < end;
      at += 4
    ) {
      data[at] = r;
      data[at + 1] = g;
      data[at + 2] = b;
      data[at + 3] = 255;
    }
  }
}

/** Draws `line` with its glyphs' top left at (x, y). */
export function drawText(
  raster: Raster,
  x: number,
  y: number,
  line: string,
  scale: number,
  color: Rgb,
): void {
  [...line].forEach((char, i) => {
    const left = x + i * GLYPH_ADVANCE * scale;
    glyph(char).forEach((row, r) => {
      row.forEach((set, c) => {
        if (set) fillRect(raster, left + c * scale, y + r * scale, scale, scale, color);
      });
    });
  });
}

/** The scene drawn into a raster. */
export function rasterize(scene: Scene): Raster {
  const raster = newRaster(scene.width, scene.height, scene.background);
  for (const item of scene.items) {
    if (item.kind === "rect") fillRect(raster, item.x, item.y, item.width, item.height, item.fill);
    else drawText(raster, item.x, item.y, item.text, item.scale, item.fill);
  }
  return raster;
}

/** A raster as PNG file bytes. */
export function encodePng(raster: Raster): Buffer {
  const png = new PNG({ width: raster.width, height: raster.height });
  png.data = Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength);
  return PNG.sync.write(png);
}

/** A scene as PNG file bytes. */
export function renderPng(scene: Scene): Buffer {
  return encodePng(rasterize(scene));
}
