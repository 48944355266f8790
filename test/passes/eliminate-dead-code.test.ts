import { describe, expect, it } from "vitest";
import { eliminateDeadCode } from "../../passes/eliminate-dead-code.js";
import { runReference } from "../../backends/reference/index.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph } from "../../src/ir/graph.js";
import { printGraph } from "../../src/ir/print.js";
import { runPasses } from "../../src/pass-manager.js";
import { randomTensor } from "../models/support.js";

/**
 * x -> linear "proj" -> output "y"; unused: input "unused", a gelu of x feeding a linear
 * with its own weight ("branch"), and a constant.
 */
function withDeadBranch(): Graph {
  const b = new GraphBuilder("dead");
  const x = b.input("x", { dtype: "f32", shape: [2, 3] });
  b.input("unused", { dtype: "f32", shape: [1] });
  const act = b.add1("gelu", [x], {}, { name: "act" });
  b.withScope("branch", () => b.add1("linear", [act, b.weight("weight", [5, 3])], {}));
  b.constant("table", randomTensor([4], 1));
  const y = b.withScope("proj", () =>
    b.add1("linear", [x, b.weight("weight", [4, 3]), b.weight("bias", [4])], {}),
  );
  b.output("y", y);
  return b.build();
}

function expectedLive(): Graph {
  const b = new GraphBuilder("dead");
  const x = b.input("x", { dtype: "f32", shape: [2, 3] });
  b.input("unused", { dtype: "f32", shape: [1] });
  const y = b.withScope("proj", () =>
    b.add1("linear", [x, b.weight("weight", [4, 3]), b.weight("bias", [4])], {}),
  );
  b.output("y", y);
  return b.build();
}

describe("eliminate-dead-code", () => {
  it("removes the unused branch, weights and constants, keeps every input", () => {
    const result = runPasses(withDeadBranch(), [eliminateDeadCode()], { debug: 0 }).graph;
    expect(printGraph(result)).toBe(printGraph(expectedLive()));
  });

  it("returns the same graph when nothing is dead", () => {
    const live = expectedLive();
    expect(eliminateDeadCode().run(live, undefined as never)).toBe(live);
  });

  it("keeps nodes reached only through a second output", () => {
    const b = new GraphBuilder("two");
    const x = b.input("x", { dtype: "f32", shape: [1, 3, 4] });
    const [, probs] = b.add("attention", [x, x, x], {
      heads: 2,
      numCls: 1,
      probs: "cls",
      mask: false,
      relPosBias: null,
    });
    b.output("p", probs!);
    const graph = b.build();
    expect(eliminateDeadCode().run(graph, undefined as never)).toBe(graph);
  });

  it("leaves outputs unchanged", () => {
    const graph = withDeadBranch();
    const result = eliminateDeadCode().run(graph, undefined as never);
    const weights = new Map([
      ["proj.weight", randomTensor([4, 3], 2)],
      ["proj.bias", randomTensor([4], 3)],
      ["branch.weight", randomTensor([5, 3], 4)],
    ]);
    const inputs = { x: randomTensor([2, 3], 5), unused: randomTensor([1], 6) };
    expect(Array.from(runReference(result, weights, inputs).y!.data)).toEqual(
      Array.from(runReference(graph, weights, inputs).y!.data),
    );
  });
});
