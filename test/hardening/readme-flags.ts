/**
 * The README's table of model flags, generated from the flag tables (MODELS[name].flags,
 * src/models/*\/schema.ts): one row per flag with the models that take it, the config
 * field it sets in each and its help text. readme-flags.test.ts checks that README.md holds
 * exactly this table between the two marker lines; after changing a flag table, rewrite it
 * with `npx tsx test/hardening/readme-flags.ts`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { FlagSpec } from "../../src/config/flags.js";
import { MODEL_NAMES, MODELS, type ModelName } from "../../src/models/index.js";

export const README = fileURLToPath(new URL("../../README.md", import.meta.url));
export const BEGIN =
  "<!-- model flags: generated from MODELS[name].flags by test/hardening/readme-flags.ts -->";
export const END = "<!-- end of model flags -->";

const cell = (text: string) => text.replaceAll("|", "\\|");

/** The table, one row per flag name, in the order the models list them. */
export function flagTable(): string {
  const rows = new Map<string, { spec: FlagSpec; uses: [ModelName, string, string][] }>();
  for (const name of MODEL_NAMES) {
    for (const spec of MODELS[name].flags) {
      const row = rows.get(spec.flag) ?? { spec, uses: [] };
      row.uses.push([name, spec.path, spec.help]);
      rows.set(spec.flag, row);
    }
  }
  const lines = ["| flag | models | config field | what it sets |", "| --- | --- | --- | --- |"];
  for (const { spec, uses } of rows.values()) {
    const flag = spec.placeholder === undefined ? spec.flag : `${spec.flag} ${spec.placeholder}`;
    const paths = new Set(uses.map(([, path]) => path));
    const field =
      paths.size === 1
        ? `\`${uses[0]![1]}\``
        : uses.map(([model, path]) => `${model}: \`${path}\``).join(", ");
    const values = spec.values === undefined ? "" : ` (${spec.values.join(", ")})`;
    const helps = new Set(uses.map(([, , help]) => help));
    const help =
      helps.size === 1 ? spec.help : uses.map(([model, , text]) => `${model}: ${text}`).join("; ");
    lines.push(
      `| \`${cell(flag)}\` | ${uses.map(([m]) => m).join(", ")} | ${field} | ${cell(help)}${cell(values)} |`,
    );
  }
  return lines.join("\n");
}

/**
 * A markdown table with its layout taken out (cell padding and the length of the separator
 * dashes), so that the README, which the formatter aligns, compares with the generated one.
 */
export function tableCells(table: string): string {
  return table
    .split("\n")
    .map((line) =>
      line
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim().replace(/^-{3,}$/, "---"))
        .join("|"),
    )
    .join("\n");
}

/** The README's text between the markers, or null when a marker is missing. */
export function readmeTable(text: string): string | null {
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) return null;
  return text.slice(begin + BEGIN.length, end).trim();
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = readFileSync(README, "utf8");
  if (readmeTable(text) === null) throw new Error(`${README}: no "${BEGIN}" ... "${END}" section`);
  const begin = text.indexOf(BEGIN) + BEGIN.length;
  writeFileSync(
    README,
    `${text.slice(0, begin)}\n\n${flagTable()}\n\n${text.slice(text.indexOf(END))}`,
  );
}
