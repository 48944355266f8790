import { WeightError } from "../ir/errors.js";
import type { Graph } from "../ir/graph.js";
import { formatShape, type HostTensor, sameShape } from "../ir/tensor.js";

/** Parameters by state_dict key. */
export type WeightStore = ReadonlyMap<string, HostTensor>;

/**
 * Checks that the store has every weight the graph reads, with the declared dtype and
 * shape, and returns them in graph order. All problems are gathered into one message so a
 * user converting a checkpoint sees every missing or mis-shaped key at once.
 */
export function bindWeights(graph: Graph, store: WeightStore): Map<string, HostTensor> {
  const bound = new Map<string, HostTensor>();
  const problems: string[] = [];
  for (const node of graph.nodes) {
    if (node.op !== "weight") continue;
    const { name, type } = node.attrs;
    const tensor = store.get(name);
    if (tensor === undefined) {
      problems.push(`missing weight "${name}" (expected ${type.dtype}${formatShape(type.shape)})`);
    } else if (tensor.dtype !== type.dtype || !sameShape(tensor.shape, type.shape)) {
      problems.push(
        `weight "${name}" is ${tensor.dtype}${formatShape(tensor.shape)}, expected ${type.dtype}${formatShape(type.shape)}`,
      );
    } else {
      bound.set(name, tensor);
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 8);
    const more =
      problems.length > shown.length ? `; and ${problems.length - shown.length} more` : "";
    throw new WeightError(`graph ${graph.name}: ${shown.join("; ")}${more}`);
  }
  return bound;
}
