import type { CostReport } from "./cost.js";
import type { PassTiming } from "./pass-manager.js";

/** Text rendering of cost reports for the CLI. */

export function gmac(macs: number): string {
  return (macs / 1e9).toFixed(2);
}

function pad(text: string, width: number, right = true): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

export function formatCostTable(report: CostReport): string {
  const stacks = report.layers.some((l) => l.stack !== null);
  const header = [
    stacks ? "stack layer" : "layer",
    "tokens in",
    "tokens out",
    "attention",
    "keys/query",
    "linear GMAC",
    "attn GMAC",
  ];
  const cross = report.layers.some((l) => l.crossKeys !== null);
  const widths = [stacks ? 11 : 5, 9, 10, cross ? 20 : 12, 10, 11, 9];
  const row = (cells: string[]) => cells.map((c, i) => pad(c, widths[i]!, i !== 3)).join("  ");
  const lines = [row(header), widths.map((w) => "-".repeat(w)).join("  ")];
  for (const layer of report.layers) {
    lines.push(
      row([
        stacks ? `${layer.stack ?? ""} ${layer.layer}` : String(layer.layer),
        String(layer.tokensIn),
        String(layer.tokensOut),
        layer.crossKeys === null
          ? layer.attention
          : `${layer.attention} + x-attn ${layer.crossKeys}`,
        layer.keysPerQuery.toFixed(1),
        gmac(layer.linearMacs),
        gmac(layer.attentionMacs),
      ]),
    );
  }
  const t = report.totals;
  lines.push("");
  lines.push(`patch embedding: ${gmac(t.embeddingMacs)} GMAC`);
  lines.push(
    `total: ${gmac(t.macs)} GMAC (linear ${gmac(t.linearMacs)}, attention ${gmac(t.attentionMacs)}, embedding ${gmac(t.embeddingMacs)})`,
  );
  lines.push(
    `weights: ${(t.weightBytes / 2 ** 20).toFixed(1)} MiB; activation traffic: ${(t.bytes / 2 ** 30).toFixed(2)} GiB`,
  );
  return lines.join("\n");
}

export function formatTimings(timings: readonly PassTiming[]): string {
  const total = timings.reduce((s, t) => s + t.ms, 0);
  const parts = timings.map((t) => `${t.pass} ${t.ms.toFixed(1)} ms`);
  return `passes: ${parts.join(", ")} (total ${total.toFixed(1)} ms)`;
}
