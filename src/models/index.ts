import type { VisionModelSpec } from "./config.js";
import type { ModelDefinition } from "./definition.js";
import { type FusionModelSpec, fusionModel } from "./fusion/index.js";
import { type RetrievalModelSpec, retrievalModel } from "./retrieval/index.js";
import { type TextModelSpec, textModel } from "./text/index.js";
import { visionModel } from "./vision/index.js";

/**
 * Every model sprig compiles, by name. A new model is a folder under src/models/ with a
 * ModelDefinition, plus one line here (and its spec type in ModelSpecs).
 */
export interface ModelSpecs {
  vision: VisionModelSpec;
  text: TextModelSpec;
  fusion: FusionModelSpec;
  retrieval: RetrievalModelSpec;
}

export type ModelName = keyof ModelSpecs;

export const MODELS: { readonly [K in ModelName]: ModelDefinition<ModelSpecs[K]> } = {
  vision: visionModel,
  text: textModel,
  fusion: fusionModel,
  retrieval: retrievalModel,
};

export const MODEL_NAMES = Object.keys(MODELS) as ModelName[];

export function isModelName(name: string): name is ModelName {
  return Object.hasOwn(MODELS, name);
}

/**
 * A model by name with its spec type erased, for generic callers (the CLI) that only pass
 * a spec from the definition's own preset and schema back to the same definition.
 */
export function modelByName(name: ModelName): ModelDefinition<unknown> {
  return MODELS[name] as unknown as ModelDefinition<unknown>;
}
