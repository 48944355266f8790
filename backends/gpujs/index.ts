import { type DebugLevel, type DebugSink, debugLevelFromEnv, stderrSink } from "../../src/debug.js";
import { BackendError } from "../../src/ir/errors.js";
import type { Graph } from "../../src/ir/graph.js";
import { checkInputs } from "../../src/runtime/inputs.js";
import { bindWeights, type WeightStore } from "../../src/runtime/weights.js";
import type { Availability, Backend, CompileOptions, Executable } from "../backend.js";
import { chooseMode, type GpujsMode, MODE_DESCRIPTION, parseMode } from "./mode.js";
import { buildProgram, type Program } from "./program.js";
import { type LaunchObserver, ProgramRunner } from "./runtime.js";

export { type EmitOptions, type EmittedModule, emitModule } from "./codegen/module.js";
export { GPUJS_MODES, type GpujsMode } from "./mode.js";
export { buildProgram, type Program } from "./program.js";
export type { KernelLaunch, LaunchObserver } from "./runtime.js";

/**
 * The gpujs backend: every node is lowered to gpu.js kernels generated for it (see
 * codegen/), scheduled as one straight-line program whose intermediates stay on the device
 * (textures in gpu mode). The engine (gpu mode on headless-gl, or cpu mode) is chosen per
 * compile; Executable.detail names the one that ran.
 */

export interface GpujsCompileOptions extends CompileOptions {
  /**
   * Engine: "auto" (default), "gpu", "cpu" or "webasm" (GPUJS_MODES; anything else is a
   * BackendError); when absent, env SPRIG_GPUJS_MODE.
   */
  readonly mode?: string;
  /** Debug level; 3 prints every generated kernel's source. Default: env SPRIG_DEBUG. */
  readonly debug?: DebugLevel;
  readonly debugSink?: DebugSink;
  /** Called after every kernel launch, for profiling (the browser page times kernels). */
  readonly onLaunch?: LaunchObserver;
}

function requestedMode(options: GpujsCompileOptions): GpujsMode | "auto" {
  if (options.mode !== undefined) return parseMode(options.mode, "CompileOptions.mode");
  return parseMode(process.env.SPRIG_GPUJS_MODE, "SPRIG_GPUJS_MODE");
}

function printKernels(program: Program, sink: DebugSink): void {
  for (const kernel of program.kernels) {
    const { x, y, z } = kernel.output;
    sink(`gpujs kernel ${kernel.name} (output [${z}][${y}][${x}]):\n${kernel.source}`);
  }
}

/** Compiles a graph for gpu.js; `mode` overrides the environment and auto-detection. */
export async function compileGpujs(
  graph: Graph,
  weights: WeightStore,
  options: GpujsCompileOptions = {},
): Promise<Executable> {
  const { mode, reason } = await chooseMode(requestedMode(options));
  const bound = bindWeights(graph, weights);
  const program = buildProgram(graph);
  const debug = options.debug ?? debugLevelFromEnv();
  if (debug >= 3) printKernels(program, options.debugSink ?? stderrSink);
  let runner: ProgramRunner | null = new ProgramRunner(
    program,
    mode,
    bound,
    options.onLaunch ?? null,
  );
  const launches = program.steps.filter((step) => step.kind === "launch").length;
  const int8 = graph.nodes.some((n) => n.op === "quantizedLinear")
    ? "; int8 linears emulated (integer codes in float kernels)"
    : "";
  const summary = `${program.kernels.length} generated kernels, ${launches} launches per run${int8}`;
  return {
    backend: "gpujs",
    graph,
    get detail(): string {
      const degraded = runner === null ? 0 : runner.degraded.size;
      const note =
        degraded === 0
          ? ""
          : `; ${degraded} kernels fell back to another engine (${[...(runner?.degraded.values() ?? [])][0]})`;
      return `gpu.js ${mode} mode (${MODE_DESCRIPTION[mode]}; ${reason}); ${summary}${note}`;
    },
    run: async (inputs) => {
      if (runner === null)
        throw new BackendError(`gpujs: executable for graph ${graph.name} was disposed`);
      checkInputs(graph, inputs);
      return runner.run(inputs);
    },
    dispose: () => {
      runner?.dispose();
      runner = null;
    },
  };
}

export const gpujsBackend: Backend = {
  name: "gpujs",
  cores: "device",
  description:
    "gpu.js kernels generated per node (GLSL on headless-gl in gpu mode, JavaScript in cpu mode); intermediates stay on the device",
  availability: async (): Promise<Availability> => {
    try {
      const { mode, reason } = await chooseMode(requestedMode({}));
      return { ok: true, detail: `gpu.js ${mode} mode (${reason})` };
    } catch (error) {
      if (error instanceof BackendError) return { ok: false, reason: error.message };
      throw error;
    }
  },
  compile: (graph, weights, options) => compileGpujs(graph, weights, options),
};
