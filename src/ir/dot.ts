import type { AnyNode, Graph } from "./graph.js";
import { OPS } from "./ops/index.js";
import { formatAttrs } from "./print.js";
import { formatType } from "./tensor.js";

const FILL: Record<string, string> = {
  source: "#eeeeee",
  attention: "#ffd8a8",
  tokens: "#b2f2bb",
};

function dotEscape(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

function isSource(node: AnyNode): boolean {
  return node.op === "input" || node.op === "weight" || node.op === "constant";
}

/**
 * Graphviz DOT: ops as boxes (attention orange, token selection green), tensors as edges
 * labelled with their types. Weights and constants are left out unless `withWeights`,
 * which keeps full models readable; inputs are always drawn.
 */
export function printDot(graph: Graph, options: { withWeights?: boolean } = {}): string {
  const lines = [
    `digraph "${dotEscape(graph.name)}" {`,
    "  rankdir=TB;",
    '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="monospace"];',
  ];
  const hidden = new Set<number>();
  for (const node of graph.nodes) {
    if (isSource(node) && node.op !== "input" && !options.withWeights) {
      hidden.add(node.id);
      continue;
    }
    const family = OPS[node.op].family;
    const title =
      isSource(node) && "name" in node.attrs ? `${node.op} ${node.attrs.name}` : node.op;
    const attrs = formatAttrs(node);
    // Escape each line, then join with DOT's line-break escape (escaping after joining
    // would turn the break into a literal backslash-n).
    const label = [title, attrs, node.name && !isSource(node) ? node.name : ""]
      .filter(Boolean)
      .map(dotEscape)
      .join("\\n");
    const fill = FILL[family] ? `, fillcolor="${FILL[family]}"` : "";
    lines.push(`  n${node.id} [label="${label}"${fill}];`);
  }
  for (const node of graph.nodes) {
    for (const ref of node.inputs) {
      if (hidden.has(ref.node)) continue;
      const type = graph.nodes[ref.node]!.outputs[ref.output]!;
      lines.push(`  n${ref.node} -> n${node.id} [label="${dotEscape(formatType(type))}"];`);
    }
  }
  graph.outputs.forEach((out, i) => {
    lines.push(`  out${i} [label="${dotEscape(out.name)}", shape=oval, fillcolor="#d0ebff"];`);
    lines.push(`  n${out.ref.node} -> out${i};`);
  });
  lines.push("}");
  return lines.join("\n");
}
