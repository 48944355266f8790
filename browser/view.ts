import type { BenchRow, CaseRow, KernelRow } from "./protocol.js";

/** DOM rendering of the page's tables (index.html holds the empty tables). */

/** Per (case, backend), the slowest kernels shown; the rest stay in __sprigResults. */
const KERNELS_SHOWN = 12;

function cell(text: string, className?: string): HTMLTableCellElement {
  const td = document.createElement("td");
  td.textContent = text;
  if (className !== undefined) td.className = className;
  return td;
}

function tbody(id: string): HTMLTableSectionElement {
  const table = document.getElementById(id);
  const body = table?.querySelector("tbody");
  if (body === null || body === undefined) throw new Error(`index.html has no table #${id}`);
  return body;
}

const ms = (value: number | null) => (value === null ? "" : value.toFixed(1));

export function setStatus(text: string): void {
  const status = document.getElementById("status");
  if (status !== null) status.textContent = text;
}

export function setText(id: string, text: string): void {
  const element = document.getElementById(id);
  if (element !== null) element.textContent = text;
}

export function renderCaseRow(row: CaseRow): void {
  const tr = document.createElement("tr");
  tr.className = row.passed ? "pass" : "fail";
  const failing = row.checks.filter((c) => !c.passed).map((c) => `${c.name}: ${c.detail}`);
  const note = row.error ?? failing.join("; ");
  tr.append(
    cell(row.case),
    cell(row.backend),
    cell(row.passed ? "pass" : "FAIL", "verdict"),
    cell(row.worstPercent === null ? "" : row.worstPercent.toFixed(1), "num"),
    cell(ms(row.ms), "num"),
    cell(ms(row.compileMs), "num"),
    cell(ms(row.runMs), "num"),
    cell(ms(row.profiledRunMs), "num"),
    cell(note, "wrap"),
  );
  tr.title = row.detail ?? "";
  tbody("results").append(tr);
}

export function renderKernels(rows: readonly KernelRow[]): void {
  if (rows.length === 0) return;
  const total = rows.reduce((sum, r) => sum + (Number.isFinite(r.ms) ? r.ms : 0), 0);
  const body = tbody("kernels");
  for (const row of rows.slice(0, KERNELS_SHOWN)) {
    const tr = document.createElement("tr");
    const nodes =
      row.nodes.length <= 3
        ? row.nodes.join(", ")
        : `${row.nodes.slice(0, 3).join(", ")}, +${row.nodes.length - 3}`;
    tr.append(
      cell(row.case),
      cell(row.backend),
      cell(row.kernel, "mono"),
      cell(nodes, "mono wrap"),
      cell(String(row.calls), "num"),
      cell(Number.isFinite(row.ms) ? row.ms.toFixed(2) : "n/a", "num"),
      cell(
        total > 0 && Number.isFinite(row.ms) ? `${((100 * row.ms) / total).toFixed(1)}%` : "",
        "num",
      ),
    );
    body.append(tr);
  }
  if (rows.length > KERNELS_SHOWN) {
    const tr = document.createElement("tr");
    const first = rows[0]!;
    const rest = rows
      .slice(KERNELS_SHOWN)
      .reduce((sum, r) => sum + (Number.isFinite(r.ms) ? r.ms : 0), 0);
    tr.append(
      cell(first.case),
      cell(first.backend),
      cell(`${rows.length - KERNELS_SHOWN} more kernels (window.__sprigResults.kernels)`),
      cell(""),
      cell(""),
      cell(rest.toFixed(2), "num"),
      cell(total > 0 ? `${((100 * rest) / total).toFixed(1)}%` : "", "num"),
    );
    body.append(tr);
  }
}

export function renderBenchRow(row: BenchRow): void {
  const section = document.getElementById("bench-section");
  if (section !== null) section.hidden = false;
  const tr = document.createElement("tr");
  tr.append(
    cell(row.backend),
    cell(String(row.frames), "num"),
    cell(String(row.tokens), "num"),
    cell(ms(row.sparse_ms), "num"),
    cell(ms(row.dense_ms), "num"),
    cell(row.ratio === null ? "" : row.ratio.toFixed(3), "num"),
    cell(row.macs_ratio.toFixed(3), "num"),
    cell(row.error ?? "", "wrap"),
  );
  tbody("bench").append(tr);
}
