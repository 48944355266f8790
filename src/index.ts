/**
 * sprig's public API: the composition root. Examples, benchmarks and users import from
 * here; everything else is internal layering (ir -> core -> passes | backends -> here).
 */
export type {
  Availability,
  Backend,
  CompileOptions as BackendCompileOptions,
  Executable,
} from "../backends/backend.js";
export {
  BACKEND_NAMES,
  type BackendName,
  isBackendName,
  loadBackend,
} from "../backends/registry.js";
export { analyzeCost } from "../passes/analyze-cost.js";
export { eliminateDeadCode } from "../passes/eliminate-dead-code.js";
export { visionPipeline } from "../passes/pipelines.js";
export { keptTokenCount, pruneTokens } from "../passes/prune-tokens.js";
export { pruneVisualTokens } from "../passes/prune-visual-tokens.js";
export { reorderTokens } from "../passes/reorder-tokens.js";
export {
  type AttentionSite,
  type PatternSource,
  sparsifyAttention,
} from "../passes/sparsify-attention.js";
export {
  type AttentionBenchResult,
  type AttentionGraphs,
  attentionGraphs,
  attentionInputs,
  benchAttention,
  timeGraph,
} from "./api/attention-bench.js";
export { type CompiledModel, type CompileOptions, compileVision } from "./api/compile.js";
export { type CaseResult, runCase } from "./api/conformance.js";
export {
  FASTEST_FIRST,
  median,
  pickBackend,
  type RunOptions,
  type RunResult,
  runVision,
} from "./api/run.js";
export { listCases, loadCase } from "./conformance/case.js";
export { type CostReport, type LayerCost, analyzeCost as costOf } from "./cost.js";
export { readSafetensors, writeSafetensors } from "./io/safetensors.js";
export * from "./ir/index.js";
export {
  type AttentionOnlyOptions,
  buildAttentionOnly,
  buildVisionModel,
  spreadTokenIndex,
} from "./models/beit.js";
export { buildBertLayer } from "./models/bert.js";
export * from "./models/config.js";
export { initWeights, syntheticClip } from "./models/init.js";
export * from "./models/presets.js";
export { tokenOrder } from "./models/token-order.js";
export { type Pass, type PassContext, runPasses } from "./pass-manager.js";
export { customLayout, denseLayout, svittLayout, svittPattern } from "./patterns/layouts.js";
export { formatCostTable } from "./report.js";
