import { InputError } from "../ir/errors.js";
import { type Graph, graphInputs } from "../ir/graph.js";
import { formatShape, type HostTensor, numElements, sameShape } from "../ir/tensor.js";

/** Checks run-time inputs against the graph's input nodes: names, dtypes, shapes, sizes. */
export function checkInputs(graph: Graph, inputs: Readonly<Record<string, HostTensor>>): void {
  const expected = graphInputs(graph);
  const names = new Set(expected.map((n) => n.attrs.name));
  for (const name of Object.keys(inputs)) {
    if (!names.has(name)) {
      throw new InputError(
        `graph ${graph.name} has no input "${name}" (inputs: ${[...names].join(", ") || "none"})`,
      );
    }
  }
  for (const node of expected) {
    const { name, type } = node.attrs;
    const tensor = inputs[name];
    if (tensor === undefined)
      throw new InputError(`graph ${graph.name}: input "${name}" is missing`);
    if (tensor.dtype !== type.dtype || !sameShape(tensor.shape, type.shape)) {
      throw new InputError(
        `input "${name}" is ${tensor.dtype}${formatShape(tensor.shape)}, expected ${type.dtype}${formatShape(type.shape)}`,
      );
    }
    if (tensor.data.length !== numElements(tensor.shape)) {
      throw new InputError(
        `input "${name}" holds ${tensor.data.length} values for shape ${formatShape(tensor.shape)}`,
      );
    }
  }
}
