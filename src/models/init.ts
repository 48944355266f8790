import { type Graph, graphInputs } from "../ir/graph.js";
import { type HostTensor, numElements } from "../ir/tensor.js";
import { Rng } from "../patterns/random.js";

/**
 * Seeded synthetic weights and inputs, drawn like the conformance cases' (see
 * ../shared/conformance/README.md, "Weights"), so a model built from them behaves like a
 * trained one numerically (bounded activations, softmax neither flat nor one-hot) without a
 * checkpoint. Every tensor has its own stream, Rng.stream(seed, name): a weight's values
 * depend only on the seed and its state_dict key, not on which other weights the graph has.
 *
 * Distributions by key:
 *   LayerNorm weight ("layernorm" / "LayerNorm" in the key)  1 + 0.2·N(0,1)
 *   LayerNorm bias                                            0.1·N(0,1)
 *   relative_position_bias_table                              0.5·N(0,1)
 *   lambda_1, lambda_2 (layer scale)                          0.5 + 0.2·N(0,1)
 *   everything else (linear and patch projections, biases,
 *   cls_token)                                                N(0, 0.02²)
 * i32 weights (none in sprig's models) are zero.
 */
export function initWeights(graph: Graph, seed = 0): Map<string, HostTensor> {
  const weights = new Map<string, HostTensor>();
  for (const node of graph.nodes) {
    if (node.op !== "weight") continue;
    const { name, type } = node.attrs;
    if (weights.has(name)) continue;
    const count = numElements(type.shape);
    if (type.dtype === "i32") {
      weights.set(name, { dtype: "i32", shape: [...type.shape], data: new Int32Array(count) });
      continue;
    }
    const data = new Float32Array(count);
    const [mean, std] = distribution(name);
    Rng.stream(seed, name).fillNormal(data, mean, std);
    weights.set(name, { dtype: "f32", shape: [...type.shape], data });
  }
  return weights;
}

/** [mean, std] of the normal distribution a weight is drawn from (see initWeights). */
function distribution(name: string): [number, number] {
  const key = name.split(".");
  const last = key.at(-1) ?? "";
  if (/layernorm/i.test(name)) return last === "bias" ? [0, 0.1] : [1, 0.2];
  if (last === "relative_position_bias_table") return [0, 0.5];
  if (last === "lambda_1" || last === "lambda_2") return [0.5, 0.2];
  return [0, 0.02];
}

/**
 * Synthetic inputs for every f32 graph input, N(0, 1), each from its own stream
 * (Rng.stream(seed, "input." + name)). Inputs of other types are left out: a caller
 * supplies those (sprig's vision encoder has only pixel_values).
 */
export function syntheticClip(graph: Graph, seed = 0): Record<string, HostTensor> {
  const inputs: Record<string, HostTensor> = {};
  for (const node of graphInputs(graph)) {
    const { name, type } = node.attrs;
    if (type.dtype !== "f32") continue;
    const data = new Float32Array(numElements(type.shape));
    Rng.stream(seed, `input.${name}`).fillNormal(data);
    inputs[name] = { dtype: "f32", shape: [...type.shape], data };
  }
  return inputs;
}
