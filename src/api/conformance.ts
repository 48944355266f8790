import type { Backend } from "../../backends/backend.js";
import { CaseError, type ConformanceCase, type TensorSpec } from "../conformance/case.js";
import { compareTensors, type TensorCheck } from "../conformance/compare.js";
import {
  beitConfigFromReference,
  bertConfigFromReference,
  bertModelConfigFromReference,
  crossModalFromReference,
  dropLocations,
  sparsityFromReference,
} from "../conformance/reference-config.js";
import { encode } from "../inputs/tokenizer.js";
import { parseVocab } from "../inputs/vocab.js";
import { GraphBuilder } from "../ir/builder.js";
import { SprigError } from "../ir/errors.js";
import type { TensorRef } from "../ir/graph.js";
import type { HostTensor } from "../ir/tensor.js";
import {
  beitEncoder,
  beitLayer,
  beitSelfAttention,
  buildVisionModel,
  identityTokenIndex,
} from "../models/beit.js";
import { buildBertLayer } from "../models/bert.js";
import { checkBeitConfig, type SparsityConfig } from "../models/config.js";
import type { ModelProgram, ModelSparsity } from "../models/definition.js";
import { MODELS } from "../models/index.js";
import type { RetrievalModelSpec } from "../models/retrieval/index.js";
import { type TokenOrderKind, tokenOrder } from "../models/token-order.js";
import { compileProgram } from "./compile.js";

/**
 * Runs conformance cases: rebuilds the reference module named in the sidecar as a sprig
 * graph, compiles it with the same pipeline users get (explicit random blocks from the
 * case), runs it on a backend and compares every expected tensor with its tolerance.
 */
export interface CaseResult {
  readonly name: string;
  readonly kind: string;
  readonly passed: boolean;
  readonly checks: readonly TensorCheck[];
  /** Expected tensors not compared, with the reason. */
  readonly skipped: readonly string[];
  readonly error: string | null;
  readonly ms: number;
}

/** Reference diagnostics that sprig's graphs do not produce (see README, Conformance). */
const NOT_PRODUCED: Readonly<Record<string, string>> = {
  sparse_attention_probs:
    "per-block probability layout of the reference's sparse_attention (internal)",
  sim_i2t_temp:
    "the training logits get_sim(t = temp); evaluation() ranks by sim_i2t (t = 1), the path sprig compiles",
};

/** A module case rebuilt as a sprig program, with the case's inputs and output names. */
interface CaseProgram {
  readonly program: ModelProgram;
  readonly inputs: Record<string, HostTensor>;
  /** expected.* suffix -> graph output name, where they differ. */
  readonly rename: Readonly<Record<string, string>>;
}

/** The explicit random blocks of a case, by vision layer. */
export function randomBlocksOf(testCase: ConformanceCase): Map<number, number[][]> {
  const blocks = new Map<number, number[][]>();
  for (const [name, tensor] of testCase.tensors) {
    const match = /^pattern\.random_block_idx(?:\.layer(\d+))?$/.exec(name);
    if (match === null) continue;
    const [rows, cols] = tensor.shape;
    const table: number[][] = [];
    for (let r = 0; r < rows!; r++)
      table.push(Array.from(tensor.data.subarray(r * cols!, (r + 1) * cols!)));
    blocks.set(Number(match[1] ?? 0), table);
  }
  return blocks;
}

function inputsOf(testCase: ConformanceCase): Record<string, HostTensor> {
  const inputs: Record<string, HostTensor> = {};
  for (const [name, tensor] of testCase.tensors) {
    if (name.startsWith("input.")) inputs[name.slice("input.".length)] = tensor;
  }
  return inputs;
}

function requireInput(testCase: ConformanceCase, name: string): HostTensor {
  const tensor = testCase.tensors.get(`input.${name}`);
  if (tensor === undefined) throw new CaseError(`${testCase.file}: missing tensor "input.${name}"`);
  return tensor;
}

/** The sparsity of a BEiT module case, for its window. */
function beitSparsity(
  sparsity: SparsityConfig,
  window: readonly [number, number, number] | null,
): ModelSparsity {
  return {
    vision: { sparsity, window: window ?? [1, 1, 1], globalTokens: 1 },
    crossModal: null,
  };
}

function buildBeitCase(testCase: ConformanceCase): CaseProgram {
  const module = testCase.module!;
  const config = checkBeitConfig(beitConfigFromReference(module.config), "config");
  const inputs = inputsOf(testCase);
  const b = new GraphBuilder(testCase.name);
  const window = config.relPosBias ? module.windowSize : null;
  const hiddenIn = (): TensorRef => {
    const hidden = requireInput(testCase, "hidden_states");
    return b.input("hidden_states", { dtype: "f32", shape: hidden.shape }, "encoderInput");
  };
  const tokenIndexFor = (hidden: TensorRef): TensorRef => {
    const given = testCase.tensors.get("input.token_idx");
    if (given !== undefined)
      return b.input("token_idx", { dtype: "i32", shape: given.shape }, "tokenIndex");
    return identityTokenIndex(b, b.shapeOf(hidden)[1]! - config.numClsTokens);
  };
  switch (module.kind) {
    case "BeitSelfAttention": {
      const x = hiddenIn();
      const tokenIndex = tokenIndexFor(x);
      const attention = b.inLayer(0, () =>
        beitSelfAttention(b, x, config, tokenIndex, module.windowSize),
      );
      b.output("context", attention.context);
      b.output("cls_attention_probs", attention.clsProbs);
      const sparsity = sparsityFromReference(module.config, null);
      return {
        program: { graph: b.build(), sparsity: beitSparsity(sparsity, module.windowSize) },
        inputs,
        rename: {},
      };
    }
    case "BeitLayer": {
      const x = hiddenIn();
      const tokenIndex = tokenIndexFor(x);
      const layer = beitLayer(b, x, config, 0, tokenIndex, window);
      b.output("layer_output", layer.output);
      b.output("cls_attention_probs", layer.clsProbs);
      b.output("attention_context", layer.context);
      const keepRate = module.tokenKeepRate ?? 1;
      const sparsity = sparsityFromReference(module.config, { keepRate, dropAfter: [0] });
      return {
        program: { graph: b.build(), sparsity: beitSparsity(sparsity, window) },
        inputs,
        rename: { token_keep_idx: "token_idx.0" },
      };
    }
    case "BeitEncoder": {
      if (window === null && config.relPosBias)
        throw new CaseError(`${testCase.file}: BeitEncoder needs window_size`);
      const x = hiddenIn();
      const tokenIndex = tokenIndexFor(x);
      const last = beitEncoder(b, x, config, window ?? [1, 1, 1], tokenIndex, {
        diagnostics: true,
      });
      b.output("last_hidden_state", last);
      const keepRate =
        typeof module.config.token_keep_rate === "number" ? module.config.token_keep_rate : 1;
      const sparsity = sparsityFromReference(module.config, {
        keepRate,
        dropAfter: dropLocations(module.config),
      });
      return {
        program: { graph: b.build(), sparsity: beitSparsity(sparsity, window) },
        inputs,
        rename: {},
      };
    }
    case "BeitModel": {
      const pixels = requireInput(testCase, "pixel_values");
      if (module.config.use_mean_pooling === false) {
        throw new CaseError(`${testCase.file}: only use_mean_pooling = true is supported`);
      }
      const keepRate =
        typeof module.config.token_keep_rate === "number" ? module.config.token_keep_rate : 1;
      const sparsity = sparsityFromReference(module.config, {
        keepRate,
        dropAfter: dropLocations(module.config),
      });
      const spec = { model: config, frames: pixels.shape[1]!, batch: pixels.shape[0]!, sparsity };
      const graph = buildVisionModel(spec, { diagnostics: true });
      const side = config.imageSize / config.patchSize;
      return {
        program: { graph, sparsity: beitSparsity(sparsity, [spec.frames, side, side]) },
        inputs,
        rename: {},
      };
    }
    default:
      throw new CaseError(`${testCase.file}: not a BEiT module kind "${module.kind}"`);
  }
}

function buildBertLayerCase(testCase: ConformanceCase): CaseProgram {
  const module = testCase.module!;
  const config = bertConfigFromReference(module.config);
  const text = requireInput(testCase, "hidden_states");
  const video = requireInput(testCase, "encoder_hidden_states");
  const layer = module.layerNum ?? 0;
  const graph = buildBertLayer(
    config,
    { batch: text.shape[0]!, textTokens: text.shape[1]!, visualTokens: video.shape[1]! },
    layer,
  );
  const keepRate = module.tokenKeepRate ?? 1;
  const drops = dropLocations(module.config);
  const pruned = keepRate < 1 && drops.includes(layer);
  return {
    program: {
      graph,
      sparsity: { vision: null, crossModal: pruned ? { keepRate, layers: [layer] } : null },
    },
    inputs: inputsOf(testCase),
    rename: {
      pruned_encoder_hidden_states: `visual_tokens.layer${layer}`,
      pruned_encoder_attention_mask: `visual_mask.layer${layer}`,
      token_keep_idx: `visual_keep_idx.layer${layer}`,
    },
  };
}

/** BertModel mode "text" (kind i): the text model with the case's config. */
function buildTextCase(testCase: ConformanceCase): CaseProgram {
  const ids = requireInput(testCase, "input_ids");
  const spec = {
    text: bertModelConfigFromReference(testCase.module!.config),
    batch: ids.shape[0]!,
    textLength: ids.shape[1]!,
  };
  return {
    program: MODELS.text.build(spec, { diagnostics: true }),
    inputs: inputsOf(testCase),
    rename: {},
  };
}

/** Kept-index outputs of prune-visual-tokens, numbered by drop as the reference's token_idx.j. */
function visualKeepRenames(layers: readonly number[] | undefined): Record<string, string> {
  const rename: Record<string, string> = {};
  [...(layers ?? [])]
    .sort((a, b) => a - b)
    .forEach((layer, j) => {
      rename[`token_idx.${j}`] = `visual_keep_idx.layer${layer}`;
    });
  return rename;
}

/** BertModel mode "fusion" + itm_head (kind j): the fusion model with the case's config. */
function buildFusionCase(testCase: ConformanceCase): CaseProgram {
  const text = requireInput(testCase, "encoder_embeds");
  const video = requireInput(testCase, "encoder_hidden_states");
  const config = testCase.module!.config;
  const crossModal = crossModalFromReference(config);
  const spec = {
    text: bertModelConfigFromReference(config),
    batch: text.shape[0]!,
    textLength: text.shape[1]!,
    visualTokens: video.shape[1]!,
    crossModal,
  };
  return {
    program: MODELS.fusion.build(spec, { diagnostics: true }),
    inputs: inputsOf(testCase),
    rename: visualKeepRenames(crossModal?.layers),
  };
}

function record(testCase: ConformanceCase, key: string): Readonly<Record<string, unknown>> {
  const value = testCase.module!.fields[key];
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new CaseError(`${testCase.file}: module_spec.${key} must be an object`);
  }
  return value as Record<string, unknown>;
}

/** The retrieval model spec a kind-k case describes (its sizes from the case's inputs). */
export function retrievalSpecOfCase(testCase: ConformanceCase): RetrievalModelSpec {
  const pixels = requireInput(testCase, "pixel_values");
  const ids = requireInput(testCase, "input_ids");
  const visionDict = record(testCase, "vision_config");
  const textDict = record(testCase, "text_config");
  if (visionDict.use_mean_pooling === false) {
    throw new CaseError(`${testCase.file}: only use_mean_pooling = true is supported`);
  }
  const embedDim = testCase.module!.fields.embed_dim;
  if (typeof embedDim !== "number") {
    throw new CaseError(`${testCase.file}: module_spec.embed_dim must be a number`);
  }
  const keepRate = typeof visionDict.token_keep_rate === "number" ? visionDict.token_keep_rate : 1;
  const crossModal = crossModalFromReference(textDict);
  const spec = {
    vision: {
      model: checkBeitConfig(beitConfigFromReference(visionDict), "vision_config"),
      frames: pixels.shape[1]!,
      batch: pixels.shape[0]!,
      sparsity: sparsityFromReference(visionDict, {
        keepRate,
        dropAfter: dropLocations(visionDict),
      }),
    },
    text: bertModelConfigFromReference(textDict),
    texts: ids.shape[0]!,
    textLength: ids.shape[1]!,
    embedDim,
    crossModal,
  };
  return spec;
}

/** The whole retrieval model from pixels and token ids (kind k), as evaluation() runs it. */
function buildRetrievalCase(testCase: ConformanceCase): CaseProgram {
  const spec = retrievalSpecOfCase(testCase);
  const rename: Record<string, string> = {};
  const drops = spec.vision.sparsity.tokens?.dropAfter.length ?? 0;
  for (let j = 0; j < drops; j++) rename[`vision_token_idx.${j}`] = `token_idx.${j}`;
  return {
    program: MODELS.retrieval.build(spec, { diagnostics: false }),
    inputs: inputsOf(testCase),
    rename,
  };
}

function toleranceOf(spec: TensorSpec | undefined): { atol: number; rtol: number } | "exact" {
  const tolerance = spec?.tolerance;
  if (tolerance === undefined) return { atol: 0, rtol: 0 };
  return "exact" in tolerance ? "exact" : tolerance;
}

/** Token-order cases check a compile-time function; the backend plays no part. */
function runTokenOrderCase(testCase: ConformanceCase): {
  checks: TensorCheck[];
  skipped: string[];
} {
  const checks: TensorCheck[] = [];
  const skipped: string[] = [];
  for (const [name, want] of testCase.tensors) {
    if (!name.startsWith("expected.")) continue;
    const match = /^expected\.(\w+)\.order\.(\d+)x(\d+)x(\d+)$/.exec(name);
    if (match === null) {
      skipped.push(`${name}: not a token order`);
      continue;
    }
    const window: [number, number, number] = [Number(match[2]), Number(match[3]), Number(match[4])];
    const order = tokenOrder(match[1] as TokenOrderKind, window);
    const got: HostTensor = {
      dtype: "i32",
      shape: [order?.length ?? 0],
      data: order ?? new Int32Array(),
    };
    checks.push(compareTensors(name, got, want, "exact"));
  }
  return { checks, skipped };
}

/** Tokenizer cases (kind t) check the WordPiece tokenizer on the sidecar's vocab and texts. */
function runTokenizerCase(testCase: ConformanceCase): { checks: TensorCheck[]; skipped: string[] } {
  const { vocab, texts, max_length: maxLength } = testCase.sidecar;
  if (!Array.isArray(vocab) || !vocab.every((t) => typeof t === "string")) {
    throw new CaseError(`${testCase.file}: "vocab" must be a list of token strings`);
  }
  if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string")) {
    throw new CaseError(`${testCase.file}: "texts" must be a list of strings`);
  }
  if (typeof maxLength !== "number") {
    throw new CaseError(`${testCase.file}: "max_length" must be a number`);
  }
  const encoded = encode(
    parseVocab(vocab.join("\n"), `${testCase.file} (vocab)`),
    texts,
    maxLength,
  );
  const produced: Record<string, HostTensor> = {
    input_ids: encoded.inputIds,
    attention_mask: encoded.attentionMask,
  };
  return compareExpected(testCase, produced, {});
}

/** The module kinds a case may name, each rebuilt as a sprig program. */
const MODULE_CASES: Readonly<Record<string, (testCase: ConformanceCase) => CaseProgram>> = {
  BeitSelfAttention: buildBeitCase,
  BeitLayer: buildBeitCase,
  BeitEncoder: buildBeitCase,
  BeitModel: buildBeitCase,
  BertLayer: buildBertLayerCase,
  BertModel: buildTextCase,
  BertFusionITM: buildFusionCase,
  SingularityRetrieval: buildRetrievalCase,
};

/** Compares every expected.* tensor of a case with what was produced. */
function compareExpected(
  testCase: ConformanceCase,
  outputs: Readonly<Record<string, HostTensor>>,
  rename: Readonly<Record<string, string>>,
): { checks: TensorCheck[]; skipped: string[] } {
  const checks: TensorCheck[] = [];
  const skipped: string[] = [];
  for (const [name, want] of testCase.tensors) {
    if (!name.startsWith("expected.")) continue;
    const suffix = name.slice("expected.".length);
    const outputName = rename[suffix] ?? suffix;
    const got = outputs[outputName];
    if (got === undefined) {
      const reason = NOT_PRODUCED[suffix];
      if (reason !== undefined) {
        skipped.push(`${name}: ${reason}`);
        continue;
      }
      checks.push({
        name,
        passed: false,
        maxAbsError: Number.NaN,
        worst: Number.NaN,
        detail: `no output "${outputName}"`,
      });
      continue;
    }
    checks.push(compareTensors(name, got, want, toleranceOf(testCase.specs.get(name))));
  }
  return { checks, skipped };
}

export async function runCase(testCase: ConformanceCase, backend: Backend): Promise<CaseResult> {
  const start = performance.now();
  const kind = testCase.module?.kind ?? testCase.function ?? "?";
  const finish = (checks: TensorCheck[], skipped: string[], error: string | null): CaseResult => ({
    name: testCase.name,
    kind,
    passed: error === null && checks.length > 0 && checks.every((c) => c.passed),
    checks,
    skipped,
    error,
    ms: performance.now() - start,
  });
  try {
    if (testCase.module === null) {
      if (!/token_order/.test(testCase.function ?? "")) {
        throw new CaseError(
          `${testCase.file}: unsupported reference function "${testCase.function}"`,
        );
      }
      const { checks, skipped } = runTokenOrderCase(testCase);
      return finish(checks, skipped, null);
    }
    if (testCase.module.kind === "BertTokenizer") {
      const { checks, skipped } = runTokenizerCase(testCase);
      return finish(checks, skipped, null);
    }
    const build = MODULE_CASES[testCase.module.kind];
    if (build === undefined) {
      throw new CaseError(
        `${testCase.file}: unsupported module kind "${testCase.module.kind}" (known: ${["BertTokenizer", ...Object.keys(MODULE_CASES)].join(", ")})`,
      );
    }
    const built = build(testCase);
    const { graph } = compileProgram(built.program, {
      randomBlocks: randomBlocksOf(testCase),
      debug: 0,
    });
    const weights = new Map<string, HostTensor>();
    for (const [name, tensor] of testCase.tensors) {
      if (testCase.specs.get(name)?.role === "weight") weights.set(name, tensor);
    }
    const executable = await backend.compile(graph, weights);
    let outputs: Record<string, HostTensor>;
    try {
      outputs = await executable.run(built.inputs);
    } finally {
      executable.dispose();
    }
    const { checks, skipped } = compareExpected(testCase, outputs, built.rename);
    return finish(checks, skipped, null);
  } catch (error) {
    if (error instanceof SprigError) return finish([], [], error.message);
    throw error;
  }
}
