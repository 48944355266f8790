/**
 * sprig in a browser (`import { ... } from "sprig/browser"`): the part of the public API
 * (src/index.ts) that needs no Node (build, compile, cost reports, conformance cases from
 * bytes, tokenizing) and the backends that run in a browser, loaded by name on first use
 * (loadBrowserBackend: reference, tfjs-webgl, tfjs-wasm, tfjs-cpu, gpujs). What reads files,
 * runs ffmpeg or loads onnxruntime-node stays in the Node entry.
 *
 * The package ships this entry bundled as one ES module with its chunks (dist/browser/, by
 * tools/build.ts): sprig's own modules are inlined with their Node-only imports stubbed out,
 * packages (TensorFlow.js, gpu.js, ts-morph, zod) stay imports for your bundler to resolve.
 *
 * @example
 * ```ts
 * import { compileVision, formatCostTable, initWeights, loadBrowserBackend, MODELS, visionPreset } from "sprig/browser";
 * const spec = visionPreset(2); // SViTT's vision encoder at 2 frames
 * const { graph, cost } = compileVision(spec);
 * console.log(formatCostTable(cost));
 * const backend = await loadBrowserBackend("tfjs-webgl");
 * const executable = await backend.compile(graph, initWeights(graph, 0));
 * const outputs = await executable.run(MODELS.vision.syntheticInputs(graph, spec, 0));
 * ```
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
export {
  BROWSER_BACKEND_NAMES,
  type BrowserBackendName,
  type BrowserBackendOptions,
  isBrowserBackendName,
  loadBrowserBackend,
} from "../backends/browser-registry.js";
export type { KernelLaunch, LaunchObserver } from "../backends/gpujs/runtime.js";
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
  type AttentionGraphs,
  attentionGraphs,
  type BenchPattern,
  attentionInputs,
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
export type { ConformanceCase } from "./conformance/case.js";
export { caseFromBytes } from "./conformance/case-from-bytes.js";
export { analyzeCost as costOf, type CostReport, type LayerCost } from "./cost.js";
export { type EncodedTexts, encode as tokenize } from "./inputs/tokenizer.js";
export { parseVocab, Vocab } from "./inputs/vocab.js";
export { builtinVocab } from "./inputs/vocab-builtin.js";
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
export { type RecallResult, recallAtK } from "./models/retrieval/ranking.js";
export { type TextModelSpec, textModel } from "./models/text/index.js";
export { tokenOrder } from "./models/token-order.js";
export { visionModel } from "./models/vision/index.js";
export { type Pass, type PassContext, runPasses } from "./pass-manager.js";
export * from "./patterns/index.js";
export { customLayout, denseLayout, svittLayout, svittPattern } from "./patterns/layouts.js";
export * from "./pictures/index.js";
export { formatCostTable } from "./report.js";
export type { WeightStore } from "./runtime/weights.js";
export { VERSION } from "./version.js";
