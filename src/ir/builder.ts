import { ShapeError } from "./errors.js";
import type { AnyNode, Graph, GraphOutput, NodeMeta, NodeRole, TensorRef } from "./graph.js";
import { OPS, type OpAttrs, type OpKind } from "./ops/index.js";
import { formatType, type HostTensor, sameShape, type TensorType } from "./tensor.js";

export interface NodeMetaInit {
  /** Full dotted name; defaults to the current scope. */
  readonly name?: string;
  /** Defaults to the layer set with `inLayer`, else null. */
  readonly layer?: number | null;
  /** Defaults to the stack set with `inStack`, else null. */
  readonly stack?: string | null;
  readonly role?: NodeRole | null;
}

/**
 * Appends nodes in topological order, inferring every output type from the op's shape
 * rule as it goes, so a graph under construction is always well typed. Scopes give nodes
 * dotted names and prefix weight keys, mirroring the reference model's module tree, so a
 * weight named inside scope "encoder.layer.3" is looked up as "encoder.layer.3.<key>".
 */
export class GraphBuilder {
  private readonly nodes: AnyNode[] = [];
  private readonly outputs: GraphOutput[] = [];
  private readonly scopes: string[] = [];
  private readonly weightsByName = new Map<string, TensorRef>();
  private readonly inputNames = new Set<string>();
  private layer: number | null = null;
  private stack: string | null = null;

  constructor(readonly name: string) {}

  /** Appends one node; returns refs to its outputs. */
  add<K extends OpKind>(
    op: K,
    inputs: readonly TensorRef[],
    attrs: OpAttrs[K],
    meta: NodeMetaInit = {},
  ): TensorRef[] {
    const id = this.nodes.length;
    const name = meta.name ?? this.scopes.join(".");
    const inputTypes = inputs.map((ref) => this.typeOf(ref));
    const def = OPS[op];
    const [min, max] = def.arity;
    if (inputs.length < min || inputs.length > max) {
      throw new ShapeError(`${op} "${name}": takes ${min}..${max} inputs, got ${inputs.length}`);
    }
    let outputs: TensorType[];
    try {
      outputs = def.infer(inputTypes, attrs);
    } catch (error) {
      if (error instanceof ShapeError) {
        const given = inputTypes.map(formatType).join(", ");
        throw new ShapeError(`${op} "${name}" (inputs ${given || "none"}): ${error.message}`);
      }
      throw error;
    }
    const node = {
      id,
      op,
      inputs: Object.freeze([...inputs]),
      attrs,
      outputs: Object.freeze(outputs),
      name,
      stack: meta.stack === undefined ? this.stack : meta.stack,
      layer: meta.layer === undefined ? this.layer : meta.layer,
      role: meta.role ?? null,
    } as AnyNode;
    this.registerSource(node);
    this.nodes.push(Object.freeze(node) as AnyNode);
    return outputs.map((_, output) => ({ node: id, output }));
  }

  /** Like `add` for single-output ops. */
  add1<K extends OpKind>(
    op: K,
    inputs: readonly TensorRef[],
    attrs: OpAttrs[K],
    meta: NodeMetaInit = {},
  ): TensorRef {
    return this.add(op, inputs, attrs, meta)[0]!;
  }

  /** Inputs must have unique names; a weight key names one node. */
  private registerSource(node: AnyNode): void {
    if (node.op === "input") {
      if (this.inputNames.has(node.attrs.name)) {
        throw new ShapeError(`graph ${this.name}: duplicate input "${node.attrs.name}"`);
      }
      this.inputNames.add(node.attrs.name);
    } else if (node.op === "weight") {
      if (this.weightsByName.has(node.attrs.name)) {
        throw new ShapeError(`graph ${this.name}: duplicate weight node "${node.attrs.name}"`);
      }
      this.weightsByName.set(node.attrs.name, { node: node.id, output: 0 });
    }
  }

  typeOf(ref: TensorRef): TensorType {
    const type = this.nodes[ref.node]?.outputs[ref.output];
    if (type === undefined)
      throw new RangeError(`builder ${this.name}: no tensor %${ref.node}:${ref.output}`);
    return type;
  }

  shapeOf(ref: TensorRef): readonly number[] {
    return this.typeOf(ref).shape;
  }

  /** Runs `body` with `scope` appended to the dotted name and weight prefix. */
  withScope<T>(scope: string, body: () => T): T {
    if (scope === "") return body();
    this.scopes.push(scope);
    try {
      return body();
    } finally {
      this.scopes.pop();
    }
  }

  /** Runs `body` with new nodes attributed to transformer layer `layer`. */
  inLayer<T>(layer: number, body: () => T): T {
    const saved = this.layer;
    this.layer = layer;
    try {
      return body();
    } finally {
      this.layer = saved;
    }
  }

  /** Runs `body` with new nodes attributed to layer stack `stack` (see NodeMeta). */
  inStack<T>(stack: string | null, body: () => T): T {
    const saved = this.stack;
    this.stack = stack;
    try {
      return body();
    } finally {
      this.stack = saved;
    }
  }

  scopedName(local: string): string {
    return [...this.scopes, local].filter((s) => s !== "").join(".");
  }

  input(name: string, type: TensorType, role: NodeRole | null = null): TensorRef {
    return this.add1("input", [], { name, type }, { name, role, layer: null });
  }

  /** A parameter named `scope.key`; asking twice for one name returns the same node. */
  weight(key: string, shape: readonly number[]): TensorRef {
    const name = this.scopedName(key);
    const existing = this.weightsByName.get(name);
    if (existing !== undefined) {
      const type = this.typeOf(existing);
      if (!sameShape(type.shape, shape)) {
        throw new ShapeError(
          `weight "${name}" requested as [${shape.join(",")}] and as [${type.shape.join(",")}]`,
        );
      }
      return existing;
    }
    return this.add1(
      "weight",
      [],
      { name, type: { dtype: "f32", shape: [...shape] } },
      { name, layer: null },
    );
  }

  constant(key: string, value: HostTensor, role: NodeRole | null = null): TensorRef {
    const name = this.scopedName(key);
    return this.add1("constant", [], { name, value }, { name, role, layer: null });
  }

  output(name: string, ref: TensorRef): void {
    if (this.outputs.some((o) => o.name === name)) {
      throw new ShapeError(`graph ${this.name}: duplicate output "${name}"`);
    }
    this.typeOf(ref);
    this.outputs.push(Object.freeze({ name, ref }));
  }

  build(): Graph {
    return Object.freeze({
      name: this.name,
      nodes: Object.freeze([...this.nodes]),
      outputs: Object.freeze([...this.outputs]),
    });
  }
}

/** The metadata of an existing node, for copying it into a new graph. */
export function metaOf(node: NodeMeta): NodeMetaInit {
  return { name: node.name, stack: node.stack, layer: node.layer, role: node.role };
}
