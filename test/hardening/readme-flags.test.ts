import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MODEL_NAMES, MODELS } from "../../src/models/index.js";
import { flagTable, README, readmeTable, tableCells } from "./readme-flags.js";

describe("README: the model flag table", () => {
  const text = readFileSync(README, "utf8");

  it("is the one generated from the flag tables (npx tsx test/hardening/readme-flags.ts)", () => {
    const table = readmeTable(text);
    expect(table).not.toBeNull();
    expect(tableCells(table!)).toBe(tableCells(flagTable()));
  });

  it("names every flag of every model, and no flag the tables lack", () => {
    const documented = new Set([...text.matchAll(/`(--[a-z-]+)/g)].map((m) => m[1]));
    for (const name of MODEL_NAMES) {
      for (const spec of MODELS[name].flags) expect(documented, name).toContain(spec.flag);
    }
    // Every --flag the table section shows is one of the models' flags.
    const known = new Set(MODEL_NAMES.flatMap((name) => MODELS[name].flags.map((f) => f.flag)));
    const inTable = [...(readmeTable(text) ?? "").matchAll(/`(--[a-z-]+)/g)].map((m) => m[1]!);
    expect(inTable.length).toBeGreaterThan(0);
    for (const flag of inTable) expect(known).toContain(flag);
  });
});
