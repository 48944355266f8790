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
export { modelPipeline, visionPipeline } from "../passes/pipelines.js";
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
export {
  type CompiledGraph,
  type CompiledModel,
  type CompileOptions,
  compileModel,
  compileProgram,
  compileVision,
} from "./api/compile.js";
export { type CaseResult, runCase } from "./api/conformance.js";
export {
  type RetrieveOptions,
  type RetrieveResult,
  type RetrieveTimings,
  retrieve,
  syntheticVideo,
  type VideoSource,
} from "./api/retrieve.js";
export {
  FASTEST_FIRST,
  median,
  pickBackend,
  type RunOptions,
  type RunResult,
  runModel,
  runVision,
} from "./api/run.js";
export { listCases, loadCase } from "./conformance/case.js";
export { analyzeCost as costOf, type CostReport, type LayerCost } from "./cost.js";
export { builtinCaptions, readCaptions } from "./inputs/captions.js";
export { type EncodedTexts, encode as tokenize } from "./inputs/tokenizer.js";
export { type PreprocessedVideo, preprocessVideo, probeVideo } from "./inputs/video.js";
export { parseVocab, readVocab, Vocab } from "./inputs/vocab.js";
export { builtinVocab } from "./inputs/vocab-builtin.js";
export { readSafetensors, writeSafetensors } from "./io/safetensors.js";
export * from "./ir/index.js";
export {
  type AttentionOnlyOptions,
  buildAttentionOnly,
  buildVisionModel,
  spreadTokenIndex,
} from "./models/beit.js";
export { BERT_BASE, type BertConfig, buildBertLayer } from "./models/bert.js";
export * from "./models/config.js";
export type {
  CrossModalSparsity,
  ModelDefinition,
  ModelProgram,
  ModelSparsity,
} from "./models/definition.js";
export { type FusionModelSpec, fusionModel } from "./models/fusion/index.js";
export {
  isModelName,
  MODEL_NAMES,
  MODELS,
  type ModelName,
  type ModelSpecs,
} from "./models/index.js";
export { initWeights, syntheticClip } from "./models/init.js";
export * from "./models/presets.js";
export {
  buildRetrievalModel,
  type RetrievalModelSpec,
  type RetrievalParts,
  retrievalModel,
  retrievalParts,
  retrievalPreset,
} from "./models/retrieval/index.js";
export { type RecallResult, recallAtK } from "./models/retrieval/ranking.js";
export { type TextModelSpec, textModel } from "./models/text/index.js";
export { tokenOrder } from "./models/token-order.js";
export { visionModel } from "./models/vision/index.js";
export { type Pass, type PassContext, runPasses } from "./pass-manager.js";
export { customLayout, denseLayout, svittLayout, svittPattern } from "./patterns/layouts.js";
export { formatCostTable } from "./report.js";
export {
  bindWeightFile,
  readWeightFile,
  type WeightFile,
  type WeightLoadReport,
} from "./runtime/weight-file.js";
