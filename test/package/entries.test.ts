import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BACKEND_NAMES } from "../../backends/registry.js";
import * as browserEntry from "../../src/browser.js";
import * as mainEntry from "../../src/index.js";

/**
 * The package's entry points as package.json declares them, without building or installing
 * (test/package/install.test.ts does that): the exports map, the browser entry as the
 * main entry's browser-safe subset, and the project's own page using the browser entry
 * like any user would.
 */

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Manifest {
  readonly exports: Record<string, string | Record<string, string>>;
  readonly files: readonly string[];
  readonly dependencies: Record<string, string>;
  readonly devDependencies: Record<string, string>;
}

const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Manifest;

/** What the browser entry adds to the main entry's names. */
const BROWSER_ONLY = ["BROWSER_BACKEND_NAMES", "isBrowserBackendName", "loadBrowserBackend"];

/** The page's modules, bundled for the browser (server.ts, session.ts and build.ts are Node tools). */
const PAGE_MODULES = ["entry.ts", "backends.ts", "bench.ts", "view.ts", "protocol.ts"];

/** Relative module specifiers of a file's imports and re-exports (static and dynamic). */
function relativeImports(file: string): string[] {
  const code = readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const patterns = [
    /\bfrom\s*["'](\.[^"']*)["']/g,
    /\bimport\s*["'](\.[^"']*)["']/g,
    /\bimport\s*\(\s*["'](\.[^"']*)["']\s*\)/g,
  ];
  return patterns.flatMap((p) => [...code.matchAll(p)].map((m) => m[1]!));
}

describe("package.json exports", () => {
  it("declares the main, browser and CLI entries, each with types before its code", () => {
    expect(Object.keys(manifest.exports).sort()).toEqual([
      ".",
      "./browser",
      "./cli",
      "./package.json",
    ]);
    for (const [entry, target] of Object.entries(manifest.exports)) {
      if (entry === "./package.json") continue;
      expect(typeof target, entry).toBe("object");
      const conditions = Object.keys(target as Record<string, string>);
      // TypeScript takes the first matching condition: "types" must come first.
      expect(conditions, entry).toEqual(["types", "default"]);
      const paths = Object.values(target as Record<string, string>);
      for (const path of paths) {
        expect(path.startsWith("./dist/"), path).toBe(true);
        const shipped = manifest.files.some((f) => path.slice(2).startsWith(`${f}/`));
        expect(shipped, `${path} is under one of "files"`).toBe(true);
      }
    }
  });

  it("keeps tsx, the TypeScript runner, out of the run-time dependencies", () => {
    expect(Object.keys(manifest.dependencies)).not.toContain("tsx");
    expect(Object.keys(manifest.devDependencies)).toContain("tsx");
  });
});

describe("the browser entry", () => {
  it("is the main entry's API (the same objects) plus the browser backends", () => {
    const main = mainEntry as Record<string, unknown>;
    const browser = browserEntry as Record<string, unknown>;
    const names = Object.keys(browser);
    expect(names.length).toBeGreaterThan(50);
    for (const name of BROWSER_ONLY) expect(names, name).toContain(name);
    const shared = names.filter((n) => !BROWSER_ONLY.includes(n));
    expect(shared.filter((n) => !(n in main))).toEqual([]);
    for (const name of shared) expect(browser[name], name).toBe(main[name]);
  });

  it("leaves out what needs Node: files, ffmpeg, onnxruntime, the Node backend registry", () => {
    for (const name of [
      "readSafetensors",
      "writeSafetensors",
      "readWeightFile",
      "preprocessVideo",
      "readCaptions",
      "readVocab",
      "loadBackend",
      "runModel",
      "retrieve",
      "listCases",
      "loadCase",
    ]) {
      expect(name in browserEntry, name).toBe(false);
      expect(name in mainEntry, name).toBe(true);
    }
  });

  it("names its backends as the Node registry does", () => {
    for (const name of browserEntry.BROWSER_BACKEND_NAMES) {
      expect(BACKEND_NAMES as readonly string[], name).toContain(name);
    }
    expect(browserEntry.isBrowserBackendName("onnx")).toBe(false);
  });

  it("rejects an unknown backend with a BackendError naming the known ones", async () => {
    await expect(browserEntry.loadBrowserBackend("onnx")).rejects.toThrow(
      /unknown browser backend "onnx"; known: reference, tfjs-webgl, tfjs-wasm, tfjs-cpu, gpujs/,
    );
    await expect(browserEntry.loadBrowserBackend("onnx")).rejects.toBeInstanceOf(
      mainEntry.BackendError,
    );
  });

  it("loads its reference backend by name", async () => {
    const backend = await browserEntry.loadBrowserBackend("reference");
    expect(backend.name).toBe("reference");
  });
});

describe("the project's own page", () => {
  it("reaches sprig only through the browser entry, src/browser.ts", () => {
    const browserDir = join(ROOT, "browser");
    const outside: string[] = [];
    for (const module of PAGE_MODULES) {
      const file = join(browserDir, module);
      for (const specifier of relativeImports(file)) {
        const target = relative(ROOT, resolve(dirname(file), specifier)).replace(/\.js$/, ".ts");
        if (!target.startsWith("browser/") && target !== "src/browser.ts") {
          outside.push(`browser/${module} imports ${specifier}`);
        }
      }
    }
    expect(outside).toEqual([]);
    // The checker sees the imports it is about.
    expect(relativeImports(join(browserDir, "entry.ts"))).toContain("../src/browser.js");
  });
});
