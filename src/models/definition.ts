import type { z } from "zod";
import type { FlagSpec } from "../config/flags.js";
import type { Graph } from "../ir/graph.js";
import type { HostTensor } from "../ir/tensor.js";
import type { Precision, SparsityConfig } from "./config.js";

/**
 * What every model sprig compiles looks like from the outside. A model (vision, text,
 * fusion, retrieval) is one folder under src/models/ exporting a ModelDefinition; the
 * CLI, the public API, the browser bundle and the benchmarks compile and run every model
 * through the same generic path (src/api/compile.ts, src/api/run.ts), so adding a model
 * means adding its folder and its entry in src/models/index.ts, nothing else.
 *
 * A definition builds the dense graph and says, as data, where its sparsity goes
 * (ModelSparsity); the pass pipeline that acts on that data lives in passes/pipelines.ts,
 * so the core never imports a pass.
 */

/** Text-guided pruning of the visual tokens in the fusion layers (prune-visual-tokens). */
export interface CrossModalSparsity {
  readonly keepRate: number;
  /** Absolute BERT layer indices after whose cross-attention tokens are dropped (token_drop_loc). */
  readonly layers: readonly number[];
}

/** Where a graph's sparsity passes act, and with which settings. */
export interface ModelSparsity {
  /** The vision encoder's edge and node sparsity, for its (T, H, W) token window. */
  readonly vision: {
    readonly sparsity: SparsityConfig;
    readonly window: readonly [number, number, number];
    readonly globalTokens: number;
    /** Arithmetic of the encoder's linear layers (quantize-linear); absent: fp32. */
    readonly precision?: Precision;
  } | null;
  readonly crossModal: CrossModalSparsity | null;
}

export const NO_SPARSITY: ModelSparsity = { vision: null, crossModal: null };

/** A dense graph ready for the pipeline: what a definition (or a model part) builds. */
export interface ModelProgram {
  readonly graph: Graph;
  readonly sparsity: ModelSparsity;
}

export interface BuildOptions {
  /** Also output intermediate values (layer inputs, attention probabilities) for checking. */
  readonly diagnostics?: boolean;
}

/** The preset knobs every model understands (others come from its config). */
export interface PresetOptions {
  /** Frames per clip (models that see video). */
  readonly frames: number;
  /** "svitt": the released sparsity; "dense": none. */
  readonly variant: "svitt" | "dense";
  /** Vision encoder layers, when the user asks for fewer (the preset keeps the drops inside). */
  readonly layers?: number;
}

export interface ModelDefinition<Spec> {
  readonly name: string;
  /** One line for `--help` and reports. */
  readonly summary: string;
  /**
   * Where this model's weights sit in the retrieval model's state_dict: a key K of the
   * model is looked up as K, then as checkpointPrefix + K, so a released retrieval
   * checkpoint loads into every model by name.
   */
  readonly checkpointPrefix: string;
  /** Types and ranges of every spec field (config files, flags and API callers). */
  readonly schema: z.ZodType<Spec>;
  /** The command-line flags that set spec fields (see src/config/flags.ts). */
  readonly flags: readonly FlagSpec[];
  /** Where the clip length sits in a spec (it picks the preset), or null for models without video. */
  readonly framesPath: string | null;
  /** Where the vision encoder's layer count sits (it shapes the preset's drops), or null. */
  readonly layersPath: string | null;
  /** The full-size preset (BEiT-base / BERT-base as released) for a clip length. */
  preset(options: PresetOptions): Spec;
  /** The same spec without any sparsity: the dense baseline reports compare with. */
  dense(spec: Spec): Spec;
  /** Checks a spec as a whole (schema, then cross-field rules); throws ConfigError naming the field. */
  check(spec: Spec): Spec;
  /** One line saying what a spec is, e.g. "SViTT BEiT-base vision encoder, 8 frames". */
  describe(spec: Spec): string;
  build(spec: Spec, options?: BuildOptions): ModelProgram;
  /** Seeded synthetic values for every graph input (a built-in clip and captions). */
  syntheticInputs(graph: Graph, spec: Spec, seed: number): Record<string, HostTensor>;
}
