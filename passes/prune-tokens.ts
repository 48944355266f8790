/**
 * prune-tokens: node sparsity in the vision encoder (SViTT's CLS-attention token dropping).
 *
 * After each chosen layer i, with L local tokens leaving the layer:
 *   score[b, j] = mean over heads of the layer's CLS attention to local token j
 *   keep        = the k = ceil(keepRate * L) highest scores, in ascending token order
 *   hidden      = [CLS rows, hidden[keep]]        (static shape [B, G + k, C])
 *   tokenIndex  = tokenIndex[keep]                (original positions, for later layers'
 *                                                   relative position bias and for output)
 * k is fixed at compile time, so every later shape is static; which tokens survive is
 * run-time data. The product keepRate * L is taken in float64, as the reference does.
 * Each drop exposes the surviving original positions as output "token_idx.j".
 *
 * Declines: keep rate 1 inserts nothing (the identity, as in the reference).
 * Contract: equals the reference BeitLayer.sparsify; every later node is re-typed for the
 * smaller token count by the rewrite driver.
 */
import { ConfigError } from "../src/ir/errors.js";
import { type AnyNode, type Graph, isOp, type TensorRef } from "../src/ir/graph.js";
import { rewriteGraph } from "../src/ir/rewrite.js";
import { checkKeepRate, keptTokenCount } from "../src/models/config.js";
import type { Pass } from "../src/pass-manager.js";

export interface PruneTokensOptions {
  readonly keepRate: number;
  /** 0-based layers after which tokens are dropped. */
  readonly afterLayers: readonly number[];
}

export { keptTokenCount };

function selfAttentionOf(graph: Graph, layer: number): AnyNode | undefined {
  return graph.nodes.find(
    (n) =>
      n.layer === layer &&
      n.role !== "crossAttention" &&
      ((isOp(n, "attention") && n.attrs.probs === "cls") || isOp(n, "blockSparseAttention")),
  );
}

function globalTokensOf(node: AnyNode): number {
  if (isOp(node, "attention")) return node.attrs.numCls;
  if (isOp(node, "blockSparseAttention")) return node.attrs.pattern.globalTokens;
  throw new RangeError(`${node.op} is not an attention node`);
}

function sameRef(a: TensorRef, b: TensorRef | null): boolean {
  return b !== null && a.node === b.node && a.output === b.output;
}

export function pruneTokens(options: PruneTokensOptions): Pass {
  return {
    name: "prune-tokens",
    description: "keep the tokens the CLS token attends to most after chosen layers",
    run(graph) {
      const keepRate = checkKeepRate("sparsity.tokens.keepRate", options.keepRate);
      if (keepRate === 1 || options.afterLayers.length === 0) return graph;
      const sites = new Map<number, { attention: AnyNode; output: AnyNode }>();
      for (const layer of options.afterLayers) {
        const attention = selfAttentionOf(graph, layer);
        const output = graph.nodes.find((n) => n.layer === layer && n.role === "layerOutput");
        if (attention === undefined || output === undefined) {
          throw new ConfigError(
            "sparsity.tokens.dropAfter",
            `layer ${layer} has no CLS self-attention and layer output in ${graph.name}`,
          );
        }
        sites.set(output.id, { attention, output });
      }
      const tokenIndexNode = graph.nodes.find((n) => n.role === "tokenIndex");
      if (tokenIndexNode === undefined) {
        throw new ConfigError(
          "sparsity.tokens",
          `${graph.name} has no token index to track kept tokens`,
        );
      }
      let originalIndex: TensorRef | null = null;
      let currentIndex: TensorRef | null = null;
      let drops = 0;
      return rewriteGraph(graph, (node, { builder, inputs, map }) => {
        if (node.id === tokenIndexNode.id) {
          const copied = builder.add(node.op, [], node.attrs as never, node);
          originalIndex = copied[0]!;
          currentIndex = originalIndex;
          return copied;
        }
        // Later layers read the pruned token index instead of the original one.
        const rewired = inputs.map((ref) => (sameRef(ref, originalIndex) ? currentIndex! : ref));
        const site = sites.get(node.id);
        if (site === undefined) {
          return rewired.some((ref, i) => ref !== inputs[i])
            ? builder.add(node.op, rewired, node.attrs as never, node)
            : undefined;
        }
        const meta = (suffix: string) => ({
          name: `${node.name}.prune.${suffix}`,
          layer: node.layer,
          role: null,
        });
        const [hidden] = builder.add(node.op, rewired, node.attrs as never, {
          ...meta("input"),
          name: node.name,
        });
        const globals = globalTokensOf(site.attention);
        const localTokens = builder.shapeOf(hidden!)[1]! - globals;
        const probs = map({ node: site.attention.id, output: 1 });
        const scores = builder.add1(
          "tokenScores",
          [probs],
          { row: 0, skip: globals },
          meta("scores"),
        );
        const keep = builder.add1(
          "topK",
          [scores],
          { k: keptTokenCount(keepRate, localTokens) },
          meta("topk"),
        );
        const pruned = builder.add1(
          "gather",
          [hidden!, keep],
          { axis: 1, keepPrefix: globals },
          { ...meta("tokens"), role: "layerOutput" },
        );
        currentIndex = builder.add1(
          "gather",
          [currentIndex!, keep],
          { axis: 1, keepPrefix: 0 },
          meta("token_index"),
        );
        builder.output(`token_idx.${drops}`, currentIndex);
        drops += 1;
        return [pruned];
      });
    },
  };
}
