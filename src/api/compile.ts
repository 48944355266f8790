import { ANALYZE_COST } from "../../passes/analyze-cost.js";
import { modelPipeline } from "../../passes/pipelines.js";
import type { CostReport } from "../cost.js";
import type { DebugLevel } from "../debug.js";
import type { Graph } from "../ir/graph.js";
import type { VisionModelSpec } from "../models/config.js";
import type { ModelDefinition, ModelProgram } from "../models/definition.js";
import { MODELS } from "../models/index.js";
import { type PassTiming, runPasses } from "../pass-manager.js";
import type { Pattern } from "../patterns/language.js";

/** A compiled graph: the pipeline's output, verified, with its cost and pass timings. */
export interface CompiledGraph {
  readonly graph: Graph;
  readonly cost: CostReport;
  readonly timings: readonly PassTiming[];
}

export interface CompiledModel<Spec = unknown> extends CompiledGraph {
  readonly model: string;
  readonly spec: Spec;
}

export interface CompileOptions {
  /** Also output intermediate values (layer inputs, attention) for checking against a reference. */
  readonly diagnostics?: boolean;
  /** Explicit random blocks per vision layer (conformance cases). */
  readonly randomBlocks?: ReadonlyMap<number, readonly (readonly number[])[]>;
  /** A pattern of the language for the vision attention, in place of the spec's (ModelPipelineOptions). */
  readonly attentionPattern?: Pattern;
  readonly debug?: DebugLevel;
}

/** Runs the pipeline a program's sparsity asks for (passes/pipelines.ts modelPipeline). */
export function compileProgram(program: ModelProgram, options: CompileOptions = {}): CompiledGraph {
  const passes = modelPipeline(program.sparsity, {
    ...(options.randomBlocks ? { randomBlocks: options.randomBlocks } : {}),
    ...(options.attentionPattern ? { attentionPattern: options.attentionPattern } : {}),
  });
  const result = runPasses(
    program.graph,
    passes,
    options.debug === undefined ? {} : { debug: options.debug },
  );
  const cost = result.analyses.get(ANALYZE_COST) as CostReport;
  return { graph: result.graph, cost, timings: result.timings };
}

/** The one compile path of every model: check the spec, build the dense graph, run its pipeline. */
export function compileModel<Spec>(
  model: ModelDefinition<Spec>,
  spec: Spec,
  options: CompileOptions = {},
): CompiledModel<Spec> {
  model.check(spec);
  const program = model.build(spec, { diagnostics: options.diagnostics ?? false });
  return { model: model.name, spec, ...compileProgram(program, options) };
}

/** The SViTT vision encoder for `spec` (compileModel of the vision model). */
export function compileVision(
  spec: VisionModelSpec,
  options: CompileOptions = {},
): CompiledModel<VisionModelSpec> {
  return compileModel(MODELS.vision, spec, options);
}
