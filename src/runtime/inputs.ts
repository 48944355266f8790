import { InputError } from "../ir/errors.js";
import { type Graph, graphInputs, nodeLabel, tensorType } from "../ir/graph.js";
import { formatShape, type HostTensor, numElements, sameShape } from "../ir/tensor.js";

/**
 * Checks run-time inputs against the graph's input nodes: names, dtypes, shapes, sizes, and
 * the range of every i32 input that an op reads directly as indices (see indexRanges), so
 * that no backend ever sees an out-of-range row or batch index from the caller.
 */
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
  for (const [name, range] of indexRanges(graph)) {
    const tensor = inputs[name];
    if (tensor?.dtype === "i32") checkRange(name, tensor, range);
  }
}

/** Values of an index input must lie in [0, limit); `reader` says which op needs that. */
interface IndexRange {
  readonly limit: number;
  readonly reader: string;
}

const RANGES = new WeakMap<Graph, ReadonlyMap<string, IndexRange>>();

/**
 * For each graph input read directly as indices, the tightest range its readers allow:
 * embedding ids index the table's rows [0, V), selectBatch indices the batch [0, B).
 * Computed once per graph (graphs are immutable).
 */
function indexRanges(graph: Graph): ReadonlyMap<string, IndexRange> {
  const known = RANGES.get(graph);
  if (known !== undefined) return known;
  const ranges = new Map<string, IndexRange>();
  for (const node of graph.nodes) {
    let what: string;
    if (node.op === "embedding") what = "rows of its table";
    else if (node.op === "selectBatch") what = "batch of its input";
    else continue;
    const source = graph.nodes[node.inputs[1]!.node];
    if (source?.op !== "input") continue;
    const limit = tensorType(graph, node.inputs[0]!).shape[0]!;
    const tighter = ranges.get(source.attrs.name);
    if (tighter === undefined || limit < tighter.limit) {
      ranges.set(source.attrs.name, { limit, reader: `indices of ${nodeLabel(node)}: ${what}` });
    }
  }
  RANGES.set(graph, ranges);
  return ranges;
}

function checkRange(name: string, tensor: HostTensor & { dtype: "i32" }, range: IndexRange): void {
  const { data, shape } = tensor;
  for (let i = 0; i < data.length; i++) {
    const value = data[i]!;
    if (value >= 0 && value < range.limit) continue;
    throw new InputError(
      `input "${name}": value ${value} at ${formatShape(positionOf(shape, i))} outside [0, ${range.limit}) (${range.reader})`,
    );
  }
}

/** The row-major multi-index of flat position `flat` in `shape`. */
export function positionOf(shape: readonly number[], flat: number): number[] {
  const index = new Array<number>(shape.length);
  let rest = flat;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    index[axis] = rest % shape[axis]!;
    rest = Math.floor(rest / shape[axis]!);
  }
  return index;
}
