/**
 * prune-visual-tokens: node sparsity in the multimodal encoder (SViTT's text-guided
 * pruning of video tokens).
 *
 * After the cross-attention of each chosen layer i, with Lv video tokens (CLS first):
 *   score[b, j] = mean over heads of text token 0's cross-attention to video token 1 + j
 *   keep        = the k = ceil(keepRate * (Lv - 1)) highest, ascending
 *   video       = [video CLS, video[1 + keep]]   mask = [mask CLS, mask[1 + keep]]
 * The cross-attention of layer i itself still reads all video tokens; the pruned tokens
 * and mask feed the cross-attention of later layers and are exposed as outputs
 * "visual_tokens.layerI", "visual_mask.layerI" and "visual_keep_idx.layerI" (indices
 * relative to the video tokens layer i saw, CLS excluded, as in the reference).
 *
 * A graph without a visual mask (evaluation() passes an all-ones one, which adds nothing)
 * prunes the tokens alone.
 *
 * Declines: keep rate 1 inserts nothing. The video CLS token is always kept (the
 * reference hard-codes one visual CLS token).
 */
import { ConfigError } from "../src/ir/errors.js";
import { isOp, type TensorRef } from "../src/ir/graph.js";
import { rewriteGraph } from "../src/ir/rewrite.js";
import { checkKeepRate } from "../src/models/config.js";
import type { Pass } from "../src/pass-manager.js";
import { keptTokenCount } from "./prune-tokens.js";

export interface PruneVisualTokensOptions {
  readonly keepRate: number;
  readonly layers: readonly number[];
}

const VISUAL_CLS_TOKENS = 1;

export function pruneVisualTokens(options: PruneVisualTokensOptions): Pass {
  return {
    name: "prune-visual-tokens",
    description: "drop the video tokens the text attends to least in the multimodal layers",
    run(graph) {
      const keepRate = checkKeepRate("sparsity.visualTokens.keepRate", options.keepRate);
      if (keepRate === 1 || options.layers.length === 0) return graph;
      const crossNodes = graph.nodes.filter(
        (n) => n.role === "crossAttention" && isOp(n, "attention"),
      );
      for (const layer of options.layers) {
        if (!crossNodes.some((n) => n.layer === layer)) {
          throw new ConfigError(
            "sparsity.visualTokens.layers",
            `layer ${layer} has no cross-attention in ${graph.name}`,
          );
        }
      }
      const videoNode = graph.nodes.find((n) => n.role === "visualTokens");
      const maskNode = graph.nodes.find((n) => n.role === "visualMask");
      if (videoNode === undefined) {
        throw new ConfigError("sparsity.visualTokens", `${graph.name} has no tagged video tokens`);
      }
      // New-graph refs: the originals, and what later layers should read instead.
      let video: { original: TensorRef; current: TensorRef } | null = null;
      let mask: { original: TensorRef; current: TensorRef } | null = null;
      let prunedAfter = -1;
      return rewriteGraph(graph, (node, { builder, inputs }) => {
        if (node.id === videoNode.id || node.id === maskNode?.id) {
          const [ref] = builder.add(node.op, inputs, node.attrs as never, node);
          if (node.id === videoNode.id) video = { original: ref!, current: ref! };
          else mask = { original: ref!, current: ref! };
          return [ref!];
        }
        const laterLayer = node.layer !== null && node.layer > prunedAfter && prunedAfter >= 0;
        const rewired = laterLayer
          ? inputs.map((ref) => {
              if (video && ref.node === video.original.node) return video.current;
              if (mask && ref.node === mask.original.node) return mask.current;
              return ref;
            })
          : inputs;
        const outputs = builder.add(node.op, rewired, node.attrs as never, node);
        if (
          node.role !== "crossAttention" ||
          node.layer === null ||
          !options.layers.includes(node.layer)
        ) {
          return outputs;
        }
        if (video === null) throw new RangeError("video tokens must precede cross-attention");
        const v: { original: TensorRef; current: TensorRef } = video;
        const m: { original: TensorRef; current: TensorRef } | null = mask;
        const layer = node.layer;
        const meta = (suffix: string) => ({
          name: `${node.name}.prune.${suffix}`,
          layer,
          role: null,
        });
        const scores = builder.add1(
          "tokenScores",
          [outputs[1]!],
          { row: 0, skip: VISUAL_CLS_TOKENS },
          meta("scores"),
        );
        const videoTokens = builder.shapeOf(v.current)[1]!;
        const k = keptTokenCount(keepRate, videoTokens - VISUAL_CLS_TOKENS);
        const keep = builder.add1("topK", [scores], { k }, meta("topk"));
        v.current = builder.add1(
          "gather",
          [v.current, keep],
          { axis: 1, keepPrefix: VISUAL_CLS_TOKENS },
          meta("tokens"),
        );
        builder.output(`visual_tokens.layer${layer}`, v.current);
        if (m !== null) {
          m.current = builder.add1(
            "gather",
            [m.current, keep],
            { axis: builder.shapeOf(m.current).length - 1, keepPrefix: VISUAL_CLS_TOKENS },
            meta("mask"),
          );
          builder.output(`visual_mask.layer${layer}`, m.current);
        }
        builder.output(`visual_keep_idx.layer${layer}`, keep);
        prunedAfter = layer;
        return outputs;
      });
    },
  };
}
