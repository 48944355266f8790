import { GLYPH_ADVANCE, type Rgb, type Scene } from "./scene.js";

/**
 * A scene as a standalone SVG document (no external references): rectangles as <rect>,
 * text as <text> in a monospace face sized to the bitmap font's cells, so text runs as
 * wide as in the PNG.
 */
export function renderSvg(scene: Scene): string {
  const lines = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}" viewBox="0 0 ${scene.width} ${scene.height}" shape-rendering="crispEdges">`,
    `<title>${escapeXml(scene.title)}</title>`,
    `<rect width="${scene.width}" height="${scene.height}" fill="${hex(scene.background)}"/>`,
  ];
  for (const item of scene.items) {
    if (item.kind === "rect") {
      lines.push(
        `<rect x="${item.x}" y="${item.y}" width="${item.width}" height="${item.height}" fill="${hex(item.fill)}"/>`,
      );
    } else {
      // A glyph is 7 pixels tall in a 9-pixel cell: the baseline sits 7·scale below the top.
      const size = (GLYPH_ADVANCE * item.scale) / 0.6;
      lines.push(
        `<text x="${item.x}" y="${item.y + 7 * item.scale}" font-family="monospace" font-size="${size.toFixed(1)}" fill="${hex(item.fill)}">${escapeXml(item.text)}</text>`,
      );
    }
  }
  lines.push("</svg>");
  return `${lines.join("\n")}\n`;
}

function hex(color: Rgb): string {
  return `#${color.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}

export function escapeXml(value: string): string {
  return value
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}
