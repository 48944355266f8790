/**
 * sparsify-attention: edge sparsity.
 *
 * Matches dense self-attention nodes of the vision encoder (probs "cls", no mask, Nq = Nk,
 * at least one global token) in the chosen layers and replaces each with a
 * blockSparseAttention node whose pattern is derived for the node's own token count, so
 * layers after a token drop get a layout for their smaller sequence.
 *
 * Declines: cross-attention and text attention (masked, or all-row probabilities), and
 * layers not listed. Patterns come from the SViTT rule (local + seeded random blocks, or
 * explicit random blocks per layer as in the conformance cases), from the pattern language
 * (src/patterns/language.ts: a predicate over token coordinates, compiled here for each
 * layer's own token count; the library is src/patterns/library/), or from a user function
 * returning a layout, fixed or ragged with partial blocks.
 *
 * Token coordinates for the language come from the graph: the clip grid (the `grid`
 * option) and the encoder's token index constant (the raster order, or reorder-tokens'
 * curve order). A layer with as many local tokens as that index has them exactly; a layer
 * after a token drop gets the spread coordinates the language documents, or an error with
 * `exactCoordinatesOnly`.
 *
 * Each layer's layout is checked for the padding mode it will run under: with padding
 * "reference" a layer left with fewer non-local blocks than random ones (after token drops:
 * M - local < random <= M) gets saturated rows that read local blocks twice, as the authors'
 * code does (src/patterns/layouts.ts); under "masked" that is an error.
 *
 * Contract: a layout that covers every block, with padding "masked" (or no padding), gives
 * the dense result; otherwise results equal the authors' sparse attention within the
 * conformance tolerances. Run it after prune-tokens when both are used.
 */
import { ConfigError } from "../src/ir/errors.js";
import { type Graph, isOp } from "../src/ir/graph.js";
import type { AttentionPattern, BlockLayout, PaddingMode } from "../src/ir/pattern.js";
import { rewriteGraph } from "../src/ir/rewrite.js";
import type { Pass } from "../src/pass-manager.js";
import { compilePattern, layerLabel, layerTokens, type Pattern } from "../src/patterns/language.js";
import { svittPattern } from "../src/patterns/layouts.js";

/** What a custom pattern function is told about the attention node it replaces. */
export interface AttentionSite {
  readonly layer: number | null;
  readonly nodeName: string;
  readonly localTokens: number;
  readonly globalTokens: number;
  readonly heads: number;
}

export type PatternSource =
  | {
      readonly kind: "svitt";
      readonly blockSize: number;
      readonly local: number;
      readonly random: number;
      readonly seed: number;
      readonly perHead: boolean;
      /** Explicit random blocks [M][random] for some layers, overriding the seed there. */
      readonly randomBlocks?: ReadonlyMap<number, readonly (readonly number[])[]>;
    }
  | {
      readonly kind: "custom";
      readonly blockSize: number;
      readonly label: string;
      readonly layout: (site: AttentionSite) => BlockLayout;
    }
  | {
      /** A pattern of the language (src/patterns/language.ts; library specs: parsePattern). */
      readonly kind: "pattern";
      readonly blockSize: number;
      readonly pattern: Pattern;
      /** Seed of the pattern's random blocks; each layer draws from its own stream. */
      readonly seed: number;
      /** Random blocks drawn per head. */
      readonly perHead: boolean;
      /** The clip's token grid (T, Hp, Wp); without it only order patterns compile. */
      readonly grid?: readonly [number, number, number];
      /** Refuse t, y, x patterns after a token drop instead of spreading coordinates. */
      readonly exactCoordinatesOnly?: boolean;
    };

export interface SparsifyAttentionOptions {
  readonly pattern: PatternSource;
  readonly padding: PaddingMode;
  /** Layers to sparsify; all encoder layers when omitted. */
  readonly layers?: readonly number[];
}

/** The layer-0 token order the graph's token index constant holds, if it has one. */
function tokenOrderOf(graph: Graph): Int32Array | null {
  const index = graph.nodes.find((n) => n.role === "tokenIndex");
  if (index === undefined || !isOp(index, "constant")) return null;
  const { value } = index.attrs;
  if (value.shape[0] !== 1 || !(value.data instanceof Int32Array)) return null;
  return value.data;
}

/**
 * Patterns of the language by token count: one without random blocks compiles once per
 * token count (layers 0-3, 4-6, ... of SViTT's drops share theirs).
 */
type LayoutCache = Map<string, AttentionPattern>;

function languagePattern(
  source: Extract<PatternSource, { kind: "pattern" }>,
  site: AttentionSite,
  padding: PaddingMode,
  order: Int32Array | null,
  where: string,
  cache: LayoutCache,
): AttentionPattern {
  const context = {
    localTokens: site.localTokens,
    blockSize: source.blockSize,
    heads: site.heads,
    tokens: layerTokens(site.localTokens, source.grid ?? null, order),
    seed: source.seed,
    stream: `attention/layer${site.layer ?? site.nodeName}`,
    perHeadRandom: source.perHead,
    padding,
    where,
  };
  const options = { exactCoordinatesOnly: source.exactCoordinatesOnly === true };
  const key = `${site.localTokens}/${site.heads}/${site.globalTokens}${source.pattern.seeded === true ? `/${context.stream}` : ""}`;
  // One pattern object per key, so the attention plan (memoised per pattern) is shared too.
  let known = cache.get(key);
  if (known === undefined) {
    known = {
      globalTokens: site.globalTokens,
      blockSize: source.blockSize,
      layout: compilePattern(source.pattern, context, options),
      origin: { kind: "custom", label: layerLabel(source.pattern, context) },
    };
    cache.set(key, known);
  }
  return known;
}

function patternFor(
  source: PatternSource,
  site: AttentionSite,
  padding: PaddingMode,
  order: Int32Array | null,
  cache: LayoutCache,
): AttentionPattern {
  const where = `layer ${site.layer ?? "?"} (${site.localTokens} local tokens)`;
  if (source.kind === "pattern") {
    return languagePattern(source, site, padding, order, where, cache);
  }
  if (source.kind === "custom") {
    return {
      globalTokens: site.globalTokens,
      blockSize: source.blockSize,
      layout: source.layout(site),
      origin: { kind: "custom", label: source.label },
    };
  }
  const explicit = site.layer === null ? undefined : source.randomBlocks?.get(site.layer);
  return svittPattern(
    {
      localTokens: site.localTokens,
      blockSize: source.blockSize,
      local: source.local,
      random: source.random,
      heads: source.perHead ? site.heads : 1,
      randomBlocks:
        explicit !== undefined
          ? { explicit }
          : { seed: source.seed, stream: `attention/layer${site.layer ?? site.nodeName}` },
      padding,
    },
    site.globalTokens,
    where,
  );
}

export function sparsifyAttention(options: SparsifyAttentionOptions): Pass {
  return {
    name: "sparsify-attention",
    description:
      "replace dense self-attention by block-sparse attention (SViTT's blocks, or a pattern)",
    run(graph) {
      const layers = options.layers === undefined ? null : new Set(options.layers);
      const order = tokenOrderOf(graph);
      const cache: LayoutCache = new Map();
      let replaced = 0;
      const result = rewriteGraph(graph, (node, { builder, inputs }) => {
        if (!isOp(node, "attention")) return undefined;
        const { attrs } = node;
        const [q, k] = node.inputs.map((ref) => graph.nodes[ref.node]!.outputs[ref.output]!);
        const tokens = q!.shape[1]!;
        const selfAttention = tokens === k!.shape[1];
        if (attrs.probs !== "cls" || attrs.mask || !selfAttention || attrs.numCls < 1)
          return undefined;
        if (layers !== null && (node.layer === null || !layers.has(node.layer))) return undefined;
        const site: AttentionSite = {
          layer: node.layer,
          nodeName: node.name,
          localTokens: tokens - attrs.numCls,
          globalTokens: attrs.numCls,
          heads: attrs.heads,
        };
        replaced += 1;
        // attention inputs: q, k, v, [table, tokenIndex]; block-sparse takes the same list.
        return builder.add(
          "blockSparseAttention",
          inputs,
          {
            heads: attrs.heads,
            pattern: patternFor(options.pattern, site, options.padding, order, cache),
            padding: options.padding,
            relPosBias: attrs.relPosBias,
          },
          { name: node.name, layer: node.layer, role: node.role },
        );
      });
      if (layers !== null && replaced < layers.size) {
        throw new ConfigError(
          "sparsity.attention.layers",
          `asked to sparsify layers ${[...layers].join(", ")} but only ${replaced} matching attention nodes were found in ${graph.name}`,
        );
      }
      return result;
    },
  };
}
