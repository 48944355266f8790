/**
 * eliminate-dead-code: drop nodes no graph output depends on.
 *
 * Keeps a node when any of its outputs is (transitively) read by a graph output; graph
 * inputs are kept even when unused, so the compiled signature stays what the user built.
 * Semantics-preserving: outputs are unchanged.
 */
import { rewriteGraph } from "../src/ir/rewrite.js";
import type { Pass } from "../src/pass-manager.js";

export function eliminateDeadCode(): Pass {
  return {
    name: "eliminate-dead-code",
    description: "remove nodes that no output depends on",
    run(graph) {
      const live = new Uint8Array(graph.nodes.length);
      const stack = graph.outputs.map((o) => o.ref.node);
      for (const node of graph.nodes) if (node.op === "input") stack.push(node.id);
      while (stack.length > 0) {
        const id = stack.pop()!;
        if (live[id]) continue;
        live[id] = 1;
        for (const ref of graph.nodes[id]!.inputs) stack.push(ref.node);
      }
      if (live.every((v) => v === 1)) return graph;
      return rewriteGraph(graph, (node) => (live[node.id] ? undefined : null));
    },
  };
}
