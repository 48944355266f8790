import type { CostReport } from "../cost.js";
import { encodePng, type Raster } from "./png.js";
import type { Scene } from "./scene.js";
import { escapeXml, renderSvg } from "./svg.js";

/**
 * `sprig report --html`: one self-contained page (no scripts, no external files; pictures
 * inline as SVG, frames as PNG data URIs) with the cost table, the attention pattern of
 * every layer, and, for a run on a clip, the tokens each drop kept drawn over the frames.
 * Every layer of the cost table has a section with id "layer-N" holding its pattern's
 * picture (class "layer-pattern") or, for dense attention, a line saying so.
 */
export interface ReportPage {
  readonly title: string;
  readonly description: string;
  readonly cost: CostReport;
  /** The dense model's cost, for the ratio line; null when the model is dense. */
  readonly denseCost: CostReport | null;
  /** The pattern picture of each block-sparse layer, by layer index (stack-less graphs). */
  readonly patterns: ReadonlyMap<number, Scene>;
  /** For a run on a clip: per drop, a caption and the kept tokens over the frames. */
  readonly drops: readonly { readonly caption: string; readonly picture: Raster }[];
  /** Lines shown under the title (the input, the backend, notes). */
  readonly notes: readonly string[];
}

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }
th:nth-child(4), td:nth-child(4) { text-align: left; }
section.layer { margin: 18px 0; }
section.layer svg { max-width: 100%; height: auto; }
figure { margin: 12px 0; }
figure img { image-rendering: pixelated; max-width: 100%; }
.note { color: #555; }
`;

const gmac = (macs: number) => (macs / 1e9).toFixed(2);

export function reportPage(page: ReportPage): string {
  const parts = [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeXml(page.title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<h1>${escapeXml(page.title)}</h1>`,
    `<p>${escapeXml(page.description)}</p>`,
    ...page.notes.map((n) => `<p class="note">${escapeXml(n)}</p>`),
    "<h2>Cost</h2>",
    costTable(page.cost, page.denseCost),
    "<h2>Attention pattern of every layer</h2>",
    ...page.cost.layers.map((layer) => layerSection(layer.layer, layer.stack, page.patterns)),
  ];
  if (page.drops.length > 0) {
    parts.push("<h2>Tokens kept by each drop</h2>");
    for (const drop of page.drops) {
      const data = encodePng(drop.picture).toString("base64");
      parts.push(
        `<figure class="kept-tokens"><img alt="${escapeXml(drop.caption)}" width="${drop.picture.width}" height="${drop.picture.height}" src="data:image/png;base64,${data}"><figcaption>${escapeXml(drop.caption)}</figcaption></figure>`,
      );
    }
  }
  parts.push("</body></html>");
  return `${parts.join("\n")}\n`;
}

function costTable(cost: CostReport, dense: CostReport | null): string {
  const head = [
    "layer",
    "tokens in",
    "tokens out",
    "attention",
    "keys/query",
    "linear GMAC",
    "attn GMAC",
  ];
  const rows = cost.layers.map((l) =>
    [
      l.stack === null ? `${l.layer}` : `${l.stack} ${l.layer}`,
      `${l.tokensIn}`,
      `${l.tokensOut}`,
      l.crossKeys === null ? l.attention : `${l.attention} + x-attn ${l.crossKeys}`,
      l.keysPerQuery.toFixed(1),
      gmac(l.linearMacs),
      gmac(l.attentionMacs),
    ]
      .map((c) => `<td>${escapeXml(c)}</td>`)
      .join(""),
  );
  const t = cost.totals;
  const totals = `total ${gmac(t.macs)} GMAC (linear ${gmac(t.linearMacs)}, attention ${gmac(t.attentionMacs)}, embedding ${gmac(t.embeddingMacs)})`;
  const ratio =
    dense === null
      ? ""
      : `; dense ${gmac(dense.totals.macs)} GMAC (attention ${gmac(dense.totals.attentionMacs)}), sparse/dense ${(t.macs / dense.totals.macs).toFixed(3)}`;
  return [
    '<table class="cost">',
    `<tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>`,
    ...rows.map((r) => `<tr>${r}</tr>`),
    "</table>",
    `<p>${escapeXml(totals + ratio)}</p>`,
  ].join("\n");
}

function layerSection(
  layer: number,
  stack: string | null,
  patterns: ReadonlyMap<number, Scene>,
): string {
  const id = stack === null ? `layer-${layer}` : `layer-${stack}-${layer}`;
  const name = stack === null ? `layer ${layer}` : `${stack} layer ${layer}`;
  const scene = stack === null || stack === "vision" ? patterns.get(layer) : undefined;
  const body =
    scene === undefined
      ? `<p class="dense">${escapeXml(name)}: dense attention (every query reads every key)</p>`
      : renderSvg(scene).replace("<svg ", '<svg class="layer-pattern" ');
  return `<section class="layer" id="${id}"><h3>${escapeXml(name)}</h3>\n${body}</section>`;
}
