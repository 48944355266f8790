import { type AnyNode, type Graph, refKey } from "./graph.js";
import { describePattern } from "./pattern.js";
import { formatShape, formatType } from "./tensor.js";

/** Attributes of a node as short `key=value` text (sources print their name instead). */
export function formatAttrs(node: AnyNode): string {
  switch (node.op) {
    case "input":
    case "weight":
      return "";
    case "constant":
      return "";
    case "linear":
    case "add":
    case "mul":
    case "gelu":
    case "prependTokens":
      return "";
    case "layerNorm":
      return `eps=${node.attrs.eps}`;
    case "reshape":
      return `shape=${formatShape(node.attrs.shape)}`;
    case "patchEmbed":
      return `patch=${node.attrs.patchSize}`;
    case "meanTokens":
      return `skip=${node.attrs.skip}`;
    case "attention": {
      const a = node.attrs;
      const parts = [`heads=${a.heads}`, `cls=${a.numCls}`, `probs=${a.probs}`];
      if (a.mask) parts.push("mask");
      if (a.relPosBias) parts.push(`relpos=${a.relPosBias.window.join("x")}`);
      return parts.join(", ");
    }
    case "blockSparseAttention": {
      const a = node.attrs;
      const parts = [
        `heads=${a.heads}`,
        `cls=${a.pattern.globalTokens}`,
        describePattern(a.pattern),
        `padding=${a.padding}`,
      ];
      if (a.relPosBias) parts.push(`relpos=${a.relPosBias.window.join("x")}`);
      return parts.join(", ");
    }
    case "tokenScores":
      return `row=${node.attrs.row}, skip=${node.attrs.skip}`;
    case "topK":
      return `k=${node.attrs.k}`;
    case "gather":
      return `axis=${node.attrs.axis}, keep=${node.attrs.keepPrefix}`;
    case "embedding":
    case "selectBatch":
      return "";
    case "weightScales":
      return "int8 symmetric per channel";
    case "quantizedLinear":
      return "int8 weights, uint8 activations per tensor";
    case "additiveMask":
      return `fill=${node.attrs.fill}`;
    case "l2Normalize":
      return `eps=${node.attrs.eps}`;
    case "similarity":
      return `scale=${node.attrs.scale}`;
    case "slice":
      return `axis=${node.attrs.axis}, ${node.attrs.start}:${node.attrs.end}`;
    default:
      return node satisfies never;
  }
}

function sourceName(node: AnyNode): string | null {
  if (node.op === "input" || node.op === "weight" || node.op === "constant") return node.attrs.name;
  return null;
}

/**
 * One line per node:
 *   %12 = linear(%9, %10, %11) : f32[1,1569,768]   # encoder.layer.0.attention.attention.query [L0]
 */
export function printGraph(graph: Graph): string {
  const lines = [`graph ${graph.name} (${graph.nodes.length} nodes)`];
  for (const node of graph.nodes) {
    const source = sourceName(node);
    const args = source !== null ? `"${source}"` : `(${node.inputs.map(refKey).join(", ")})`;
    const attrs = formatAttrs(node);
    const types = node.outputs.map(formatType).join(", ");
    const where = source === null && node.name ? `  # ${node.name}` : "";
    const layer =
      node.layer === null ? "" : `${node.stack === null ? "" : `${node.stack} `}L${node.layer}`;
    const tags = [layer, node.role ?? ""].filter(Boolean).join(" ");
    lines.push(
      `  %${node.id} = ${node.op}${source !== null ? " " : ""}${args}${attrs ? ` {${attrs}}` : ""} : ${types}${where}${tags ? ` [${tags}]` : ""}`,
    );
  }
  for (const out of graph.outputs) lines.push(`  output "${out.name}" = ${refKey(out.ref)}`);
  return lines.join("\n");
}
