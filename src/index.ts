/**
 * sprig's public API in Node (`import { ... } from "sprig"`): the composition root. Examples,
 * benchmarks and users import from here; everything else is internal layering (ir -> core ->
 * passes | backends -> here). Importing it loads no backend library: each backend loads its
 * own on first use (loadBackend). Every type an export refers to is exported too (`npm run
 * docs` fails otherwise). The browser subset is src/browser.ts ("sprig/browser").
 *
 * @module
 */
export type {
  Availability,
  Backend,
  CompileOptions as BackendCompileOptions,
  CoreUse,
  Executable,
} from "../backends/backend.js";
export { type StagedProfile, stagedProfile } from "../backends/onnx/profile.js";
export {
  BACKEND_NAMES,
  type BackendChoices,
  type BackendName,
  isBackendName,
  KERNEL_CHOICES,
  type KernelChoice,
  loadBackend,
} from "../backends/registry.js";
export { analyzeCost } from "../passes/analyze-cost.js";
export { eliminateDeadCode } from "../passes/eliminate-dead-code.js";
export {
  type ModelPipelineOptions,
  modelPipeline,
  type VisionPipelineOptions,
  visionPipeline,
} from "../passes/pipelines.js";
export { keptTokenCount, type PruneTokensOptions, pruneTokens } from "../passes/prune-tokens.js";
export {
  type PruneVisualTokensOptions,
  pruneVisualTokens,
} from "../passes/prune-visual-tokens.js";
export { type ReorderTokensOptions, reorderTokens } from "../passes/reorder-tokens.js";
export {
  type AttentionSite,
  type PatternSource,
  type SparsifyAttentionOptions,
  sparsifyAttention,
} from "../passes/sparsify-attention.js";
export {
  type AttentionBenchResult,
  type AttentionGraphs,
  attentionGraphs,
  type BenchPattern,
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
  candidateFromExport,
  type ExploreCandidate,
  type ExploreOptions,
  type ExploreResult,
  type ExploreRow,
  explore,
  exploreScene,
  formatExploreTable,
} from "./api/explore.js";
export {
  type LayerPattern,
  layerPatternScene,
  layerPatterns,
  patternAtLayer,
  pictureFormat,
  withAttentionPattern,
  writePicture,
} from "./api/patterns.js";
export {
  type ExecutablePool,
  type ExecutableWorkerSetup,
  openExecutablePool,
  poolOf,
  workersFor,
} from "./api/executable-pool.js";
export { type HtmlReportOptions, htmlReport } from "./api/report-html.js";
export {
  type RetrievalPlan,
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
  type RunStage,
  runModel,
  runVision,
} from "./api/run.js";
export type { TensorCheck } from "./conformance/compare.js";
export {
  type ConformanceCase,
  listCases,
  loadCase,
  type ModuleSpec,
  type TensorSpec,
  type Tolerance,
} from "./conformance/case.js";
export { caseFromBytes } from "./conformance/case-from-bytes.js";
export type { FlagKind, FlagSpec } from "./config/flags.js";
export {
  analyzeCost as costOf,
  type CostReport,
  type CostTotals,
  type LayerCost,
} from "./cost.js";
export type { DebugLevel, DebugSink } from "./debug.js";
export { builtinCaptions, type Caption, type CaptionSet, readCaptions } from "./inputs/captions.js";
export type { VideoTools } from "./inputs/ffmpeg.js";
export { type EncodedTexts, encode as tokenize } from "./inputs/tokenizer.js";
export {
  type PreprocessedVideo,
  type PreprocessOptions,
  type PreprocessTimings,
  preprocessVideo,
  probeVideo,
  type VideoInfo,
} from "./inputs/video.js";
export { parseVocab, readVocab, Vocab } from "./inputs/vocab.js";
export { builtinVocab } from "./inputs/vocab-builtin.js";
export { readSafetensors, type SafetensorsFile, writeSafetensors } from "./io/safetensors.js";
export * from "./ir/index.js";
export {
  type AttentionOnlyOptions,
  buildAttentionOnly,
  buildVisionModel,
  spreadTokenIndex,
} from "./models/beit.js";
export {
  BERT_BASE,
  type BertConfig,
  type BertLayerConfig,
  type BertLayerShapes,
  buildBertLayer,
} from "./models/bert.js";
export * from "./models/config.js";
export type {
  BuildOptions,
  CrossModalSparsity,
  ModelDefinition,
  ModelProgram,
  ModelSparsity,
  PresetOptions,
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
export { PRECISIONS } from "./models/precision.js";
export * from "./models/presets.js";
export {
  buildRetrievalModel,
  type RetrievalModelSpec,
  type RetrievalParts,
  retrievalModel,
  retrievalParts,
  retrievalPreset,
} from "./models/retrieval/index.js";
export { type RecallResult, recallAtK, type ScoreMatrix } from "./models/retrieval/ranking.js";
export { type TextModelSpec, textModel } from "./models/text/index.js";
export { type TokenOrderKind, type TokenWindow, tokenOrder } from "./models/token-order.js";
export { visionModel } from "./models/vision/index.js";
export type { RelPosAdaptation, RelPosAdaptEntry } from "./models/vision/relpos-interpolate.js";
export type { ExtraMemory, MemoryBudget, MemoryEstimate } from "./memory.js";
export {
  type Pass,
  type PassContext,
  type PassTiming,
  type PipelineResult,
  runPasses,
} from "./pass-manager.js";
export * from "./patterns/index.js";
export {
  customLayout,
  denseLayout,
  type SvittLayoutSpec,
  svittLayout,
  svittPattern,
} from "./patterns/layouts.js";
export { type KeptTokensOptions, keptTokensRaster, keptTokensSize } from "./pictures/frames.js";
export * from "./pictures/index.js";
export { encodePng, type Raster, rasterize, renderPng } from "./pictures/png.js";
export { type ReportPage, reportPage } from "./pictures/report-page.js";
export { formatCostTable } from "./report.js";
export {
  bindWeightFile,
  readWeightFile,
  type WeightFile,
  type WeightLoadReport,
} from "./runtime/weight-file.js";
export type { WeightStore } from "./runtime/weights.js";
export { VERSION } from "./version.js";
