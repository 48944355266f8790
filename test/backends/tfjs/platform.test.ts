import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { loadBackend } from "../../../backends/registry.js";
import { LOWERINGS, TFJS_KINDS, tfjsBackend } from "../../../backends/tfjs/index.js";
import { wasmBinaryDir } from "../../../backends/tfjs/node-wasm.js";
import { OP_KINDS } from "../../../src/ir/ops/index.js";

/** Backend bring-up, registration, the lowering table, and browser bundling. */

const TFJS_DIR = fileURLToPath(new URL("../../../backends/tfjs/", import.meta.url));

describe("tfjs platform", () => {
  it("finds the wasm binaries in Node (a folder path with a trailing separator)", () => {
    const dir = wasmBinaryDir();
    expect(dir.endsWith("/dist/") || dir.endsWith("\\dist\\")).toBe(true);
    expect(existsSync(join(dir, "tfjs-backend-wasm-simd.wasm"))).toBe(true);
  });

  it("initialises tfjs-wasm with SIMD and without threads", async () => {
    const availability = await tfjsBackend("wasm").availability();
    expect(availability).toEqual({ ok: true, detail: "tfjs wasm (SIMD, 1 thread)" });
  });

  it("initialises tfjs-cpu", async () => {
    expect((await tfjsBackend("cpu").availability()).ok).toBe(true);
  });

  it("reports webgl and webgpu unavailable in Node, with the reason", async () => {
    for (const kind of ["webgl", "webgpu"] as const) {
      const availability = await tfjsBackend(kind).availability();
      expect(availability.ok).toBe(false);
      if (!availability.ok) expect(availability.reason).toMatch(new RegExp(`tfjs-${kind}`));
    }
    // A failed bring-up leaves the other tfjs backends usable.
    expect((await tfjsBackend("wasm").availability()).ok).toBe(true);
  });

  it("is registered as tfjs-cpu and tfjs-wasm", async () => {
    expect((await loadBackend("tfjs-cpu")).name).toBe("tfjs-cpu");
    expect((await loadBackend("tfjs-wasm")).name).toBe("tfjs-wasm");
    expect(TFJS_KINDS.map((k) => tfjsBackend(k).name)).toEqual([
      "tfjs-cpu",
      "tfjs-wasm",
      "tfjs-webgl",
      "tfjs-webgpu",
    ]);
  });

  it("lowers every op kind", () => {
    expect(Object.keys(LOWERINGS).sort()).toEqual([...OP_KINDS].sort());
  });

  it("imports Node builtins only from node-wasm.ts, never statically", () => {
    const files = readdirSync(TFJS_DIR, { recursive: true, encoding: "utf8" }).filter((f) =>
      f.endsWith(".ts"),
    );
    const offenders = files.filter((file) => {
      if (file === "node-wasm.ts") return false;
      const source = readFileSync(join(TFJS_DIR, file), "utf8");
      // `typeof import("./node-wasm.js")` is a type and erased; a value import() is not.
      return /from\s+["']node:|(?<!typeof\s)import\s*\(\s*["'](?:node:|\.\/node-wasm)/.test(source);
    });
    expect(offenders).toEqual([]);
  });

  it("bundles for the browser with esbuild, without the Node-only module", async () => {
    const result = await build({
      entryPoints: [join(TFJS_DIR, "index.ts")],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((i) => i.endsWith("backends/tfjs/backend.ts"))).toBe(true);
    expect(inputs.filter((i) => i.includes("node-wasm") || i.startsWith("node:"))).toEqual([]);
  });
});
