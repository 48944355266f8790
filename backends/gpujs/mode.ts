import { createRequire } from "node:module";
import { BackendError } from "../../src/ir/errors.js";

/**
 * Which gpu.js engine runs the kernels.
 * - "gpu": gpu.js's headless-gl backend (WebGL 1 through ANGLE, float32 textures). Needs the
 *   optional `gl` package and an X display (e.g. `xvfb-run -a`).
 * - "cpu": gpu.js's JavaScript backend: the same kernels as plain JavaScript loops, float64
 *   arithmetic with float32 storage between kernels. Always available.
 * - "webasm": gpu.js's WebAssembly backend (f32x4 SIMD, float32 arithmetic); only when asked
 *   for, useful to see float32 numerics without a GPU.
 * "auto" (the default) picks "gpu" when headless-gl can create a context, else "cpu".
 * Chosen by CompileOptions.mode, else env SPRIG_GPUJS_MODE, else "auto".
 */
export type GpujsMode = "cpu" | "gpu" | "webasm";

export const GPUJS_MODES: readonly (GpujsMode | "auto")[] = ["auto", "gpu", "cpu", "webasm"];

/** The gpu.js `mode` setting of each engine. */
export const GPUJS_SETTING: Readonly<Record<GpujsMode, "cpu" | "headlessgl" | "webasm">> = {
  cpu: "cpu",
  gpu: "headlessgl",
  webasm: "webasm",
};

export const MODE_DESCRIPTION: Readonly<Record<GpujsMode, string>> = {
  gpu: "headless-gl, WebGL 1 fragment shaders, float32 textures",
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

/** Whether gpu.js's headless-gl backend works here, and if not, why. */
export async function probeHeadlessGl(): Promise<{
  readonly ok: boolean;
  readonly detail: string;
}> {
  try {
    createRequire(import.meta.url)("gl");
  } catch {
    return {
      ok: false,
      detail:
        "headless-gl (the optional npm package gl) is not installed or failed to build (it needs libx11-dev libxi-dev libxext-dev)",
    };
  }
  const { GPU } = await import("gpu.js");
  if (!GPU.isHeadlessGLSupported) {
    return {
      ok: false,
      detail: "headless-gl cannot create a WebGL context (no X display? run under xvfb-run -a)",
    };
  }
  if (!GPU.isSinglePrecisionSupported) {
    return { ok: false, detail: "headless-gl lacks float textures (OES_texture_float)" };
  }
  return { ok: true, detail: "headless-gl context with float32 textures" };
}

export interface ModeChoice {
  readonly mode: GpujsMode;
  /** Why this mode (requested, or what auto found). */
  readonly reason: string;
}

/** Resolves the requested mode; a requested "gpu" that cannot run is a BackendError. */
export async function chooseMode(requested: GpujsMode | "auto"): Promise<ModeChoice> {
  if (requested === "cpu" || requested === "webasm")
    return { mode: requested, reason: "requested" };
  const gl = await probeHeadlessGl();
  if (requested === "gpu") {
    if (!gl.ok) throw new BackendError(`gpujs: gpu mode requested but ${gl.detail}`);
    return { mode: "gpu", reason: "requested" };
  }
  return gl.ok
    ? { mode: "gpu", reason: "auto: headless-gl available" }
    : { mode: "cpu", reason: `auto: ${gl.detail}` };
}
