/**
 * Builds sprig's C kernels (bsa.c) on this machine (a script: importing it builds), run by
 * `npm ci` / `npm install`
 * (package.json "postinstall") and by `npm run build:native`:
 * - build/native/sprig_native.node: an N-API addon compiled with the system C compiler
 *   ($CC or cc) for this CPU (-march=native: it is built where it runs), headers from the
 *   running Node's include/node;
 * - build/native/sprig_bsa.wasm: the same kernel as WebAssembly SIMD (clang and wasm-ld,
 *   Debian's clang and lld), used by the tfjs-wasm backend.
 * A missing compiler is not an install failure: the backends then use their portable
 * lowerings and say so (SPRIG_REQUIRE_NATIVE=1, set by CI, makes the tests insist).
 * Each output is written to a temporary name and renamed, so a failed build leaves the
 * previous artefact or none, never a half-written one.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NATIVE_DIR } from "./paths.js";

const here = dirname(fileURLToPath(import.meta.url));

function compile(what: string, command: string, args: string[], output: string): boolean {
  const partial = `${output}.partial`;
  try {
    execFileSync(command, [...args, "-o", partial], { stdio: ["ignore", "pipe", "pipe"] });
    renameSync(partial, output);
    console.log(`sprig: built ${what}: ${output}`);
    return true;
  } catch (error) {
    rmSync(partial, { force: true });
    const detail = (error as { stderr?: Buffer }).stderr?.toString().trim() || String(error);
    console.warn(`sprig: could not build ${what} (${command}): ${detail.split("\n")[0]}`);
    return false;
  }
}

function nodeHeaders(): string | null {
  const candidates = [
    process.env.npm_config_nodedir ? join(process.env.npm_config_nodedir, "include", "node") : "",
    join(dirname(process.execPath), "..", "include", "node"),
  ];
  return candidates.find((dir) => dir !== "" && existsSync(join(dir, "node_api.h"))) ?? null;
}

function buildAddon(): boolean {
  const headers = nodeHeaders();
  if (headers === null) {
    console.warn("sprig: no node_api.h beside this Node; native kernels not built");
    return false;
  }
  const sources = ["bsa.c", "addon.c"].map((file) => join(here, file));
  const flags = ["-O3", "-march=native", "-fno-strict-aliasing", "-ffp-contract=fast"];
  return compile(
    "native kernels",
    process.env.CC ?? "cc",
    [...flags, "-fPIC", "-shared", "-pthread", `-I${headers}`, ...sources, "-lm"],
    join(NATIVE_DIR, "sprig_native.node"),
  );
}

function buildWasm(): boolean {
  const flags = ["--target=wasm32", "-O3", "-msimd128", "-mbulk-memory", "-nostdlib"];
  flags.push("-fno-strict-aliasing", "-ffp-contract=fast");
  const link = ["-Wl,--no-entry", "-Wl,--import-memory", "-Wl,--export=__heap_base"];
  return compile(
    "WebAssembly kernels",
    process.env.SPRIG_CLANG ?? "clang",
    [...flags, "-DSPRIG_VBYTES=16", ...link, join(here, "bsa.c"), join(here, "wasm.c")],
    join(NATIVE_DIR, "sprig_bsa.wasm"),
  );
}

mkdirSync(NATIVE_DIR, { recursive: true });
buildAddon();
buildWasm();
