import { writeFileAtomic } from "../io/atomic.js";
import { ConfigError } from "../ir/errors.js";
import { type AnyNode, type Graph, isOp, type Node } from "../ir/graph.js";
import type { AttentionPattern } from "../ir/pattern.js";
import type { VisionModelSpec } from "../models/config.js";
import { renderPng } from "../pictures/png.js";
import { patternScene } from "../pictures/pattern.js";
import type { Scene } from "../pictures/scene.js";
import { renderSvg } from "../pictures/svg.js";

/**
 * The patterns of a compiled graph, layer by layer, and their pictures (src/pictures):
 * what `sprig pattern show` draws and `sprig report --html` puts on its page.
 */
export interface LayerPattern {
  readonly layer: number | null;
  readonly nodeName: string;
  readonly localTokens: number;
  readonly heads: number;
  readonly pattern: AttentionPattern;
}

/** Every block-sparse attention node of `graph`, in graph order. */
export function layerPatterns(graph: Graph): LayerPattern[] {
  return graph.nodes
    .filter((n: AnyNode): n is Node<"blockSparseAttention"> => isOp(n, "blockSparseAttention"))
    .map((node) => ({
      layer: node.layer,
      nodeName: node.name,
      localTokens: node.outputs[0]!.shape[1]! - node.attrs.pattern.globalTokens,
      heads: node.attrs.heads,
      pattern: node.attrs.pattern,
    }));
}

/** The pattern of `layer` in `graph`; a ConfigError names the layers there are. */
export function patternAtLayer(graph: Graph, layer: number): LayerPattern {
  const all = layerPatterns(graph);
  const found = all.find((p) => p.layer === layer);
  if (found === undefined) {
    const layers = all.map((p) => p.layer).join(", ");
    throw new ConfigError(
      "layer",
      all.length === 0
        ? `${graph.name} has no block-sparse attention (a dense model?)`
        : `layer ${layer} has no block-sparse attention; layers with one: ${layers}`,
    );
  }
  return found;
}

/** The picture of one layer's pattern. */
export function layerPatternScene(
  entry: LayerPattern,
  options: { readonly head?: number; readonly title?: string; readonly zoom?: number } = {},
): Scene {
  if (options.head !== undefined && !(options.head >= 0 && options.head < entry.heads)) {
    throw new ConfigError("head", `must be in [0, ${entry.heads - 1}], got ${options.head}`);
  }
  return patternScene(entry.pattern, {
    localTokens: entry.localTokens,
    ...(options.head === undefined ? {} : { head: options.head }),
    title: options.title ?? `layer ${entry.layer ?? entry.nodeName}`,
    ...(options.zoom === undefined ? {} : { zoom: options.zoom }),
  });
}

/** The picture format a file name asks for. */
export function pictureFormat(path: string): "png" | "svg" {
  if (/\.png$/i.test(path)) return "png";
  if (/\.svg$/i.test(path)) return "svg";
  throw new ConfigError("out", `"${path}" must end in .png or .svg (the picture's format)`);
}

/** Writes `scene` to `path` as PNG or SVG, by its extension, atomically. */
export async function writePicture(path: string, scene: Scene): Promise<void> {
  const format = pictureFormat(path);
  await writeFileAtomic(path, format === "png" ? renderPng(scene) : renderSvg(scene));
}

/** The spec with its vision attention pattern replaced by `pattern` (a library spec). */
export function withAttentionPattern(spec: VisionModelSpec, pattern: string): VisionModelSpec {
  const attention = spec.sparsity.attention;
  if (attention === null) {
    throw new ConfigError(
      "sparsity.attention",
      `is off (null, or --dense), so there is no attention pattern to set to "${pattern}"`,
    );
  }
  return { ...spec, sparsity: { ...spec.sparsity, attention: { ...attention, pattern } } };
}
