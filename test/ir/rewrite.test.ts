import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { ShapeError } from "../../src/ir/errors.js";
import type { Graph } from "../../src/ir/graph.js";
import { printGraph } from "../../src/ir/print.js";
import { rewriteGraph } from "../../src/ir/rewrite.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { signature, tinyGraph } from "./support.js";

/**
 * x f32[1,10,8] -> linear "proj" [1,10,16] -> gelu "act" -> linear "head" [1,10,4] -> output "y",
 * plus an unused branch: mul "dead" (x * x).
 * Ids: %0 x, %1 proj.weight, %2 proj.bias, %3 proj, %4 act, %5 dead, %6 head.weight, %7 head.
 */
function chain(): Graph {
  const b = new GraphBuilder("chain");
  const x = b.input("x", { dtype: "f32", shape: [1, 10, 8] });
  const proj = b.withScope("proj", () =>
    b.add1("linear", [x, b.weight("weight", [16, 8]), b.weight("bias", [16])], {}),
  );
  const act = b.add1("gelu", [proj], {}, { name: "act" });
  b.add1("mul", [x, x], {}, { name: "dead" });
  const head = b.withScope("head", () => b.add1("linear", [act, b.weight("weight", [4, 16])], {}));
  b.output("y", head);
  return b.build();
}

describe("rewriteGraph", () => {
  it("copies every node unchanged when the visitor returns undefined", () => {
    const graph = chain();
    const copy = rewriteGraph(graph, () => undefined);
    expect(copy).not.toBe(graph);
    expect(printGraph(copy)).toBe(printGraph(graph));
    expect(copy.outputs).toEqual(graph.outputs);
    verifyGraph(copy);
  });

  it("replaces a node with new nodes and maps later uses to them", () => {
    const graph = chain();
    const result = rewriteGraph(graph, (node, { builder, inputs }) => {
      if (node.name !== "act") return undefined;
      // gelu(h) -> h * h
      return [builder.add1("mul", [inputs[0]!, inputs[0]!], {}, { name: "square" })];
    });
    expect(signature(result)).toEqual([
      "input f32[1,10,8]",
      "weight f32[16,8]",
      "weight f32[16]",
      "linear f32[1,10,16]",
      "mul f32[1,10,16]",
      "mul f32[1,10,8]",
      "weight f32[4,16]",
      "linear f32[1,10,4]",
    ]);
    const square = result.nodes[4]!;
    expect(square.name).toBe("square");
    expect(square.inputs).toEqual([
      { node: 3, output: 0 },
      { node: 3, output: 0 },
    ]);
    expect(result.nodes[7]!.inputs[0]).toEqual({ node: 4, output: 0 });
    verifyGraph(result);
  });

  it("drops unused nodes and renumbers the rest contiguously", () => {
    const result = rewriteGraph(chain(), (node) => (node.name === "dead" ? null : undefined));
    expect(result.nodes.map((n) => n.id)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(result.nodes.map((n) => n.name)).toEqual([
      "x",
      "proj.weight",
      "proj.bias",
      "proj",
      "act",
      "head.weight",
      "head",
    ]);
    // head now reads act at %4 and its weight at %5
    expect(result.nodes[6]!.inputs).toEqual([
      { node: 4, output: 0 },
      { node: 5, output: 0 },
    ]);
    expect(result.outputs).toEqual([{ name: "y", ref: { node: 6, output: 0 } }]);
    verifyGraph(result);
  });

  it("errors when a dropped node is still used", () => {
    expect(() => rewriteGraph(chain(), (node) => (node.name === "act" ? null : undefined))).toThrow(
      /%4 was dropped but is still used/,
    );
  });

  it("errors when an output's node is dropped", () => {
    expect(() =>
      rewriteGraph(chain(), (node) => (node.name === "head" ? null : undefined)),
    ).toThrow(/%7 was dropped but is still used/);
  });

  it("re-infers types: a smaller token count at the input propagates downstream", () => {
    const result = rewriteGraph(chain(), (node, { builder }) =>
      node.op === "input" ? [builder.input("x", { dtype: "f32", shape: [1, 6, 8] })] : undefined,
    );
    expect(signature(result)).toEqual([
      "input f32[1,6,8]",
      "weight f32[16,8]",
      "weight f32[16]",
      "linear f32[1,6,16]",
      "gelu f32[1,6,16]",
      "mul f32[1,6,8]",
      "weight f32[4,16]",
      "linear f32[1,6,4]",
    ]);
    verifyGraph(result);
  });

  it("fails at the first node whose shape rule breaks, naming it", () => {
    let error: unknown;
    try {
      rewriteGraph(chain(), (node, { builder }) =>
        node.op === "input" ? [builder.input("x", { dtype: "f32", shape: [1, 10, 7] })] : undefined,
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ShapeError);
    expect((error as Error).message).toContain('linear "proj"');
  });

  it("rejects a replacement with the wrong number of outputs", () => {
    expect(() =>
      rewriteGraph(chain(), (node, { builder, inputs }) =>
        node.name === "act"
          ? [builder.add1("gelu", [inputs[0]!], {}), builder.add1("gelu", [inputs[0]!], {})]
          : undefined,
      ),
    ).toThrow(/has 1 outputs, replacement gave 2/);
  });

  it("copy() re-emits a node with other inputs; map() translates earlier refs", () => {
    const graph = tinyGraph();
    const seen: string[] = [];
    const result = rewriteGraph(graph, (node, context) => {
      if (node.op === "layerNorm") {
        // LayerNorm of the raw input padded through the linear: feed it the linear output twice
        const linear = context.map({ node: 3, output: 0 });
        seen.push(`${linear.node}:${linear.output}`);
        return context.copy([linear, context.inputs[1]!, context.inputs[2]!]);
      }
      return undefined;
    });
    expect(seen).toEqual(["3:0"]);
    expect(printGraph(result)).toBe(printGraph(graph));
  });

  it("finish() may add outputs after every node is mapped", () => {
    const result = rewriteGraph(
      chain(),
      (node) => (node.name === "dead" ? null : undefined),
      (builder, map) => builder.output("hidden", map({ node: 4, output: 0 })),
    );
    expect(result.outputs).toEqual([
      { name: "y", ref: { node: 6, output: 0 } },
      { name: "hidden", ref: { node: 4, output: 0 } },
    ]);
  });

  it("leaves the original graph untouched", () => {
    const graph = chain();
    const before = printGraph(graph);
    rewriteGraph(graph, (node) => (node.name === "dead" ? null : undefined));
    expect(printGraph(graph)).toBe(before);
  });
});
