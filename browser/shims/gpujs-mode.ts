import { GPU } from "gpu.js";
import type * as NodeMode from "../../backends/gpujs/mode.js";
import { BackendError } from "../../src/ir/errors.js";

/**
 * Browser stand-in for backends/gpujs/mode.ts, swapped in by the bundler (build.ts): the
 * Node module pins gpu mode to gpu.js's "headlessgl" engine and probes the `gl` package with
 * createRequire, neither of which exists in a browser. Here gpu mode is gpu.js's "webgl2"
 * engine (fragment shaders on float32 textures); cpu and webasm are as in Node. Every export
 * of the Node module is mirrored with the same name and signature (checked below by tsc),
 * so the rest of the gpujs backend runs unchanged.
 */

export type GpujsMode = NodeMode.GpujsMode;

export const GPUJS_MODES: readonly (GpujsMode | "auto")[] = ["auto", "gpu", "cpu", "webasm"];

/** The gpu.js `mode` setting of each engine, in a browser. */
export const GPUJS_SETTING: Readonly<Record<GpujsMode, "cpu" | "webgl2" | "webasm">> = {
  cpu: "cpu",
  gpu: "webgl2",
  webasm: "webasm",
};

export const MODE_DESCRIPTION: Readonly<Record<GpujsMode, string>> = {
  gpu: "WebGL2 fragment shaders in the browser, float32 textures",
  cpu: "JavaScript kernels, float64 arithmetic, float32 storage between kernels",
  webasm: "WebAssembly kernels with f32x4 SIMD, float32 arithmetic",
};

export function parseMode(text: string | undefined, from: string): GpujsMode | "auto" {
  if (text === undefined || text === "") return "auto";
  if ((GPUJS_MODES as readonly string[]).includes(text)) return text as GpujsMode | "auto";
  throw new BackendError(
    `gpujs: ${from} must be one of ${GPUJS_MODES.join(", ")}, got ${JSON.stringify(text)}`,
  );
}

/** Whether gpu.js's WebGL2 engine works in this browser, with float32 textures. */
export async function probeWebGl2(): Promise<{ readonly ok: boolean; readonly detail: string }> {
  if (!GPU.isWebGL2Supported) {
    return { ok: false, detail: "this browser cannot create a WebGL2 context for gpu.js" };
  }
  if (!GPU.isSinglePrecisionSupported) {
    return { ok: false, detail: "WebGL2 lacks float32 render targets (EXT_color_buffer_float)" };
  }
  return { ok: true, detail: "WebGL2 context with float32 textures" };
}

/** Same name as the Node module's probe; in a browser it probes WebGL2. */
export const probeHeadlessGl = probeWebGl2;

export type ModeChoice = NodeMode.ModeChoice;

/** Resolves the requested mode; a requested "gpu" that cannot run is a BackendError. */
export async function chooseMode(requested: GpujsMode | "auto"): Promise<ModeChoice> {
  if (requested === "cpu" || requested === "webasm")
    return { mode: requested, reason: "requested" };
  const gl = await probeWebGl2();
  if (requested === "gpu") {
    if (!gl.ok) throw new BackendError(`gpujs: gpu mode requested but ${gl.detail}`);
    return { mode: "gpu", reason: "requested" };
  }
  return gl.ok
    ? { mode: "gpu", reason: "auto: WebGL2 available" }
    : { mode: "cpu", reason: `auto: ${gl.detail}` };
}

// The shim must keep the Node module's interface (except GPUJS_SETTING's gpu engine name).
({
  GPUJS_MODES,
  MODE_DESCRIPTION,
  parseMode,
  probeHeadlessGl,
  chooseMode,
}) satisfies Omit<typeof NodeMode, "GPUJS_SETTING">;
({ GPUJS_SETTING }) satisfies Record<
  "GPUJS_SETTING",
  Record<keyof typeof NodeMode.GPUJS_SETTING, string>
>;
