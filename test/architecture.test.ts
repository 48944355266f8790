/**
 * The layering of design/architecture.md, checked on the import statements:
 *   src/ir -> src (core) -> passes | backends -> src/api, src/cli, src/index.ts (public entry)
 * and bench/, examples/ use the public entry only.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PUBLIC_ENTRY = "src/index.ts";
/** The browser's public entry composes the layers like src/index.ts (package "sprig/browser"). */
const BROWSER_ENTRY = "src/browser.ts";
const isEntry = (path: string | null) => path === PUBLIC_ENTRY || path === BROWSER_ENTRY;

interface ImportEdge {
  /** Importing file, relative to the repository root with "/" separators. */
  readonly from: string;
  /** The specifier as written. */
  readonly specifier: string;
  /** For relative specifiers, the imported file relative to the root (".js" read as ".ts"). */
  readonly target: string | null;
}

function tsFiles(dir: string): string[] {
  const abs = join(ROOT, dir);
  if (!existsSync(abs)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(abs)) {
    if (entry === "node_modules" || entry === "results") continue;
    const path = join(abs, entry);
    if (statSync(path).isDirectory()) out.push(...tsFiles(join(dir, entry)));
    else if (entry.endsWith(".ts")) out.push(join(dir, entry).split(sep).join("/"));
  }
  return out;
}

/** Module specifiers of static imports, re-exports, side-effect and dynamic imports. */
function specifiersOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^;'"]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of code.matchAll(pattern)) found.push(m[1]!);
  return found;
}

function edgesOf(file: string): ImportEdge[] {
  const source = readFileSync(join(ROOT, file), "utf8");
  return specifiersOf(source).map((specifier) => {
    if (!specifier.startsWith(".")) return { from: file, specifier, target: null };
    const abs = resolve(ROOT, dirname(file), specifier).replace(/\.js$/, ".ts");
    return { from: file, specifier, target: relative(ROOT, abs).split(sep).join("/") };
  });
}

const under = (path: string, folder: string) => path === folder || path.startsWith(`${folder}/`);

/** The layering rules; returns one line per violating import. */
function violations(edges: readonly ImportEdge[]): string[] {
  const bad: string[] = [];
  for (const edge of edges) {
    const { from, target } = edge;
    const say = (why: string) => bad.push(`${from} imports "${edge.specifier}": ${why}`);
    if (under(from, "src/ir")) {
      if (target === null) {
        if (!edge.specifier.startsWith("node:")) say("src/ir imports no packages");
      } else if (!under(target, "src/ir")) {
        say("src/ir imports nothing outside src/ir");
      }
      continue;
    }
    if (target === null) continue; // packages and node builtins
    const composition = under(from, "src/api") || under(from, "src/cli") || isEntry(from);
    if (under(from, "src") && !composition) {
      if (under(target, "passes") || under(target, "backends"))
        say("the core never imports passes/ or backends/");
      if (under(target, "src/api") || under(target, "src/cli") || isEntry(target))
        say("the core never imports the API, CLI or public entry");
    }
    if (under(from, "passes")) {
      if (under(target, "backends")) say("a pass knows no backend");
      if (under(target, "src/api") || under(target, "src/cli") || isEntry(target))
        say("passes never import src/api, src/cli or the public entry");
    }
    if (under(from, "backends")) {
      if (under(target, "passes")) say("a backend never imports passes/");
      if (under(target, "src/api") || under(target, "src/cli") || isEntry(target))
        say("backends never import src/api, src/cli or the public entry");
    }
  }
  return bad;
}

/** bench/ and examples/ reach the project only through the public entry. */
function entryViolations(edges: readonly ImportEdge[]): string[] {
  const bad: string[] = [];
  for (const edge of edges) {
    if (edge.target === null) continue;
    const home = edge.from.split("/")[0]!;
    if (under(edge.target, home)) continue;
    if (edge.target !== PUBLIC_ENTRY)
      bad.push(`${edge.from} imports "${edge.specifier}": use ${PUBLIC_ENTRY} only`);
  }
  return bad;
}

const layered = ["src", "passes", "backends"].flatMap(tsFiles);
const layeredEdges = layered.flatMap(edgesOf);

describe("import parsing", () => {
  it("finds static, type-only, re-export, side-effect and dynamic imports", () => {
    const source = [
      'import { a } from "./a.js";',
      'import type { B } from "../b.js";',
      "import {",
      "  c,",
      "  d,",
      '} from "./multi.js";',
      'export * from "./e.js";',
      'export { f } from "./f.js";',
      'import "./side.js";',
      'const g = await import("./g.js");',
      '// import { h } from "./commented.js";',
      '/* import { i } from "./block.js"; */',
    ].join("\n");
    expect(specifiersOf(source).sort()).toEqual(
      ["../b.js", "./a.js", "./e.js", "./f.js", "./g.js", "./multi.js", "./side.js"].sort(),
    );
  });

  it("sees the project's files and their imports", () => {
    expect(layered.filter((f) => under(f, "src/ir")).length).toBeGreaterThan(5);
    expect(layered.filter((f) => under(f, "passes")).length).toBeGreaterThan(3);
    expect(layered.filter((f) => under(f, "backends")).length).toBeGreaterThan(2);
    const targets = layeredEdges
      .filter((e) => e.from === "passes/prune-tokens.ts")
      .map((e) => e.target);
    expect(targets).toContain("src/ir/rewrite.ts");
    expect(targets).toContain("src/pass-manager.ts");
  });

  it("flags violations of every rule (the checker can fail)", () => {
    const edge = (from: string, specifier: string, target: string | null): ImportEdge => ({
      from,
      specifier,
      target,
    });
    expect(
      violations([
        edge("src/ir/graph.ts", "../models/config.js", "src/models/config.ts"),
        edge("src/ir/graph.ts", "commander", null),
        edge("src/cost.ts", "../passes/x.js", "passes/x.ts"),
        edge("src/models/beit.ts", "../../backends/registry.js", "backends/registry.ts"),
        edge("passes/x.ts", "../backends/registry.js", "backends/registry.ts"),
        edge("passes/x.ts", "../src/api/compile.js", "src/api/compile.ts"),
        edge("passes/x.ts", "../src/cli/main.js", "src/cli/main.ts"),
        edge("backends/r.ts", "../passes/x.js", "passes/x.ts"),
        edge("backends/r.ts", "../src/api/compile.js", "src/api/compile.ts"),
        edge("backends/r.ts", "../src/cli/main.js", "src/cli/main.ts"),
      ]),
    ).toHaveLength(10);
    expect(
      violations([
        edge("src/ir/graph.ts", "./tensor.js", "src/ir/tensor.ts"),
        edge("src/ir/graph.ts", "node:fs", null),
        edge("src/api/compile.ts", "../../passes/pipelines.js", "passes/pipelines.ts"),
        edge("src/cli/main.ts", "../../backends/registry.js", "backends/registry.ts"),
        edge("passes/x.ts", "../src/ir/graph.js", "src/ir/graph.ts"),
        edge("backends/r.ts", "../src/models/config.js", "src/models/config.ts"),
      ]),
    ).toEqual([]);
    expect(
      entryViolations([
        edge("bench/a.ts", "../src/index.js", "src/index.ts"),
        edge("bench/a.ts", "./harness.js", "bench/harness.ts"),
        edge("bench/a.ts", "benny", null),
        edge("examples/e.ts", "../src/api/compile.js", "src/api/compile.ts"),
        edge("examples/e.ts", "../passes/pipelines.js", "passes/pipelines.ts"),
      ]),
    ).toHaveLength(2);
  });
});

describe("layering", () => {
  it("src/ir imports nothing outside src/ir", () => {
    expect(violations(layeredEdges.filter((e) => under(e.from, "src/ir")))).toEqual([]);
  });

  it("the core (src/ except api, cli and the public entry) never imports passes/ or backends/", () => {
    expect(
      violations(layeredEdges.filter((e) => under(e.from, "src") && !under(e.from, "src/ir"))),
    ).toEqual([]);
  });

  it("passes/ never import backends/, src/api or src/cli", () => {
    expect(violations(layeredEdges.filter((e) => under(e.from, "passes")))).toEqual([]);
  });

  it("backends/ never import passes/, src/api or src/cli", () => {
    expect(violations(layeredEdges.filter((e) => under(e.from, "backends")))).toEqual([]);
  });

  if (existsSync(join(ROOT, PUBLIC_ENTRY))) {
    it("bench/ and examples/ import only the public entry src/index.ts", () => {
      const edges = ["bench", "examples"].flatMap(tsFiles).flatMap(edgesOf);
      expect(entryViolations(edges)).toEqual([]);
    });
  } else {
    it.todo("bench/ and examples/ import only the public entry (src/index.ts does not exist yet)");
  }
});
