import { describe, expect, it } from "vitest";
import { eliminateDeadCode } from "../../passes/eliminate-dead-code.js";
import { GraphInvariantError } from "../../src/ir/errors.js";
import type { Graph } from "../../src/ir/graph.js";
import { type Pass, PassOrderError, runPasses } from "../../src/pass-manager.js";
import { tinyGraph, withNode } from "../ir/support.js";

function identity(name: string, requires?: string[]): Pass {
  return {
    name,
    description: "returns its input",
    ...(requires ? { requires } : {}),
    run: (graph) => graph,
  };
}

/** A pass that records the shape it claims for the linear node wrongly (violates rule 6). */
const breakIt: Pass = {
  name: "break-it",
  description: "corrupts an output type",
  run: (graph) => withNode(graph, 3, { outputs: [{ dtype: "f32", shape: [1, 4, 99] }] }),
};

describe("runPasses", () => {
  it("verifies after each pass and names the pass that broke the graph", () => {
    let error: unknown;
    try {
      runPasses(tinyGraph(), [identity("first"), breakIt, identity("never")], { debug: 0 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GraphInvariantError);
    const message = (error as Error).message;
    expect(message).toMatch(/^after pass break-it: rule 6: /);
    expect(message).toContain('%3 linear "proj"');
  });

  it("verifies the input graph before the first pass runs", () => {
    let ran = false;
    const spy: Pass = {
      name: "spy",
      description: "records that it ran",
      run: (graph) => {
        ran = true;
        return graph;
      },
    };
    const invalid = withNode(tinyGraph(), 3, { id: 9 });
    expect(() => runPasses(invalid, [spy], { debug: 0 })).toThrow(/rule 1/);
    expect(ran).toBe(false);
  });

  it("records one timing per pass with node counts", () => {
    const graph = tinyGraph();
    const dropLast: Pass = {
      name: "drop-output-node",
      description: "keeps only the linear as output",
      run: (g): Graph => ({ ...g, outputs: [{ name: "y", ref: { node: 3, output: 0 } }] }),
    };
    const result = runPasses(graph, [identity("a"), dropLast, eliminateDeadCode()], { debug: 0 });
    expect(result.timings.map((t) => [t.pass, t.nodesBefore, t.nodesAfter])).toEqual([
      ["a", 7, 7],
      ["drop-output-node", 7, 7],
      ["eliminate-dead-code", 7, 4],
    ]);
    for (const t of result.timings) expect(Number.isFinite(t.ms) && t.ms >= 0).toBe(true);
    expect(result.graph.nodes).toHaveLength(4);
  });

  it("enforces requires: a pass needing another that has not run is refused", () => {
    const graph = tinyGraph();
    expect(() => runPasses(graph, [identity("b", ["a"]), identity("a")], { debug: 0 })).toThrow(
      PassOrderError,
    );
    expect(() => runPasses(graph, [identity("b", ["a"])], { debug: 0 })).toThrow(
      /pass b requires a to run before it/,
    );
    expect(
      runPasses(graph, [identity("a"), identity("b", ["a"])], { debug: 0 }).timings,
    ).toHaveLength(2);
  });

  it("passes analyses between passes and returns them", () => {
    const producer: Pass = {
      name: "count",
      description: "records the node count",
      run: (graph, context) => {
        context.analyses.set("count", graph.nodes.length);
        return graph;
      },
    };
    let seen: unknown;
    const consumer: Pass = {
      name: "read",
      description: "reads the count",
      requires: ["count"],
      run: (graph, context) => {
        seen = context.analyses.get("count");
        return graph;
      },
    };
    const result = runPasses(tinyGraph(), [producer, consumer], { debug: 0 });
    expect(seen).toBe(7);
    expect(result.analyses.get("count")).toBe(7);
  });

  it("logs timings at debug 1 and graphs at debug 2 to the given sink", () => {
    const lines1: string[] = [];
    runPasses(tinyGraph(), [identity("a")], { debug: 1, log: (l) => lines1.push(l) });
    expect(lines1).toHaveLength(1);
    expect(lines1[0]).toMatch(/^pass a: \d+\.\d\d ms, 7 -> 7 nodes$/);
    const lines2: string[] = [];
    runPasses(tinyGraph(), [identity("a")], { debug: 2, log: (l) => lines2.push(l) });
    expect(lines2).toHaveLength(2);
    expect(lines2[1]).toMatch(/^graph after a:\ngraph tiny \(7 nodes\)/);
    const silent: string[] = [];
    runPasses(tinyGraph(), [identity("a")], { debug: 0, log: (l) => silent.push(l) });
    expect(silent).toEqual([]);
  });
});
