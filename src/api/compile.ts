import { visionPipeline } from "../../passes/pipelines.js";
import { ANALYZE_COST } from "../../passes/analyze-cost.js";
import type { CostReport } from "../cost.js";
import type { DebugLevel } from "../debug.js";
import type { Graph } from "../ir/graph.js";
import { buildVisionModel } from "../models/beit.js";
import { checkVisionSpec, tokenWindow, type VisionModelSpec } from "../models/config.js";
import { type PassTiming, runPasses } from "../pass-manager.js";

export interface CompiledModel {
  readonly spec: VisionModelSpec;
  /** The compiled (sparse) graph, verified. */
  readonly graph: Graph;
  readonly cost: CostReport;
  readonly timings: readonly PassTiming[];
}

export interface CompileOptions {
  /** Also output every layer's input and CLS attention (for checking against a reference). */
  readonly diagnostics?: boolean;
  readonly randomBlocks?: ReadonlyMap<number, readonly (readonly number[])[]>;
  readonly debug?: DebugLevel;
}

/** Builds the dense vision encoder for `spec` and runs the SViTT pipeline over it. */
export function compileVision(spec: VisionModelSpec, options: CompileOptions = {}): CompiledModel {
  checkVisionSpec(spec);
  const dense = buildVisionModel(spec, { diagnostics: options.diagnostics ?? false });
  const passes = visionPipeline({
    sparsity: spec.sparsity,
    window: tokenWindow(spec.model, spec.frames),
    globalTokens: spec.model.numClsTokens,
    ...(options.randomBlocks ? { randomBlocks: options.randomBlocks } : {}),
  });
  const result = runPasses(
    dense,
    passes,
    options.debug === undefined ? {} : { debug: options.debug },
  );
  const cost = result.analyses.get(ANALYZE_COST) as CostReport;
  return { spec, graph: result.graph, cost, timings: result.timings };
}
