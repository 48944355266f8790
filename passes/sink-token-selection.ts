/**
 * sink-token-selection: run the rest of a drop layer on the kept tokens only.
 *
 * prune-tokens selects tokens on a layer's output: out = gather(f(...), idx). The selection
 * idx depends only on the layer's CLS attention, and every op between attention and the
 * output works token by token, so the gather moves up through them by one rewrite rule,
 *   gather(f(a, b, ...), idx) = f(gather(a, idx), gather(b, idx), ...),
 * applied to every op f whose op-table entry states a per-token fact along the gathered
 * axis (OpDef.perToken: linear, add, mul, gelu, layerNorm, ...; a user's new op joins by
 * stating its fact, not by a name listed here). Operands that broadcast over the axis
 * (biases, layer scales, LayerNorm weights) are read whole. Sinking stops at the first
 * tensors that are not per-token results or are also read elsewhere (in BEiT, the attention
 * context and the layer input, which the first LayerNorm and the residual both read); those
 * are gathered. The attention output projection, both residuals, the second LayerNorm and
 * the FFN then run on G + k rows instead of N.
 *
 * Matches: every gather whose gathered tensor comes from a per-token op. A node joins the
 * moved set S when its op is per-token along the axis, every carrier that has the axis has
 * the gather's rank (so the same gather applies to it), and every use of its output is a
 * gathered use: the gather's data input, or a carrier slot of a node already in S.
 * Declines (leaves the gather where it is, or stops sinking there): a tensor that a graph
 * output or any other node reads whole (moving the gather would need both versions), an op
 * without a per-token fact (attention, reshape, patch embedding, quantised linears whose
 * activation scale spans the whole tensor), multi-output nodes, carriers of another rank,
 * and anything the selection indices themselves depend on.
 *
 * Contract: exact up to float rounding. Each moved op computes the same rows from the same
 * operand rows, so outputs equal the unmoved graph's wherever the backend computes a row
 * independently of how many rows there are (float sums may associate differently).
 * Graph outputs, their names and types are unchanged; the moved set's last node takes the
 * gather's role (layerOutput), so reports still find the layer's output.
 */
import { analyzeCost } from "../src/cost.js";
import { type GraphBuilder, metaOf } from "../src/ir/builder.js";
import {
  type AnyNode,
  consumers as consumersOf,
  type Graph,
  isOp,
  type TensorRef,
} from "../src/ir/graph.js";
import { OPS } from "../src/ir/ops/index.js";
import { rewriteGraph } from "../src/ir/rewrite.js";
import type { Pass } from "../src/pass-manager.js";

type GatherNode = Extract<AnyNode, { op: "gather" }>;

/** One gather and the nodes it moves through. */
interface SinkSite {
  readonly gather: GatherNode;
  /** Ids of the nodes re-run on the kept tokens (ascending). */
  readonly moved: readonly number[];
}

/**
 * Input slots of `node` that carry output axis `axis` under its per-token fact, or null
 * when the op is not per-token along `axis` or a carrier with the axis has another rank.
 * A carrier "has" the axis when, right-aligned, its size there equals the output's.
 */
export function carrierSlots(graph: Graph, node: AnyNode, axis: number): number[] | null {
  const fact = OPS[node.op].perToken;
  if (fact === undefined || node.outputs.length !== 1) return null;
  const out = node.outputs[0]!.shape;
  if (fact.axes === "leading" && axis === out.length - 1) return null;
  const slots = fact.carriers === "all" ? node.inputs.map((_, i) => i) : fact.carriers;
  const carrying: number[] = [];
  for (const slot of slots) {
    const ref = node.inputs[slot];
    if (ref === undefined) continue;
    const shape = graph.nodes[ref.node]!.outputs[ref.output]!.shape;
    const aligned = axis - (out.length - shape.length);
    if (aligned < 0 || shape[aligned] !== out[axis]) continue; // broadcast over the axis
    if (shape.length !== out.length) return null;
    carrying.push(slot);
  }
  return carrying;
}

/**
 * The nodes a gather moves through, found in one backwards sweep: node ids are a
 * topological order, so when node n is reached every reader of n has been decided.
 * Nothing the indices depend on can move: the gather reads them in a slot that is not a
 * gathered use, so the node computing them stays, and so, reader by reader, does each
 * of its ancestors.
 */
function findSite(graph: Graph, gather: GatherNode, users: readonly number[][]): SinkSite | null {
  const { axis } = gather.attrs;
  const outputNodes = new Set(graph.outputs.map((o) => o.ref.node));
  // For each moved node, its carrier slots; a use of n is gathered when it is one of these.
  const moved = new Map<number, readonly number[]>();
  const gatheredUse = (reader: number, slot: number): boolean =>
    reader === gather.id ? slot === 0 : moved.get(reader)?.includes(slot) === true;
  const wanted = new Set<number>([gather.inputs[0]!.node]);
  for (let n = gather.id - 1; n >= 0; n--) {
    if (!wanted.has(n)) continue;
    const node = graph.nodes[n]!;
    const slots = carrierSlots(graph, node, axis);
    if (slots === null || outputNodes.has(n)) continue;
    const allUsesGathered = users[n]!.every((reader) =>
      graph.nodes[reader]!.inputs.every((ref, slot) => ref.node !== n || gatheredUse(reader, slot)),
    );
    if (!allUsesGathered) continue;
    moved.set(n, slots);
    for (const slot of slots) wanted.add(node.inputs[slot]!.node);
  }
  if (moved.size === 0) return null;
  return { gather, moved: [...moved.keys()].sort((a, b) => a - b) };
}

/** Every gather that can sink, with the nodes it moves through (disjoint sets). */
export function sinkSites(graph: Graph): SinkSite[] {
  const users = consumersOf(graph);
  const sites: SinkSite[] = [];
  for (const node of graph.nodes) {
    if (!isOp(node, "gather")) continue;
    const site = findSite(graph, node, users);
    if (site !== null) sites.push(site);
  }
  return sites;
}

export function sinkTokenSelection(): Pass {
  return {
    name: "sink-token-selection",
    description:
      "select tokens right after attention so the rest of a drop layer runs on the kept ones",
    run(graph, context) {
      const sites = sinkSites(graph);
      if (sites.length === 0) return graph;
      const result = sink(graph, sites);
      // What it saved, for `--debug 1` (sprig report's per-layer MACs show it too).
      if (context?.debug >= 1) {
        const removed = analyzeCost(graph).totals.macs - analyzeCost(result).totals.macs;
        const moved = sites.reduce((n, s) => n + s.moved.length, 0);
        context.log(
          `sink-token-selection: -${(removed / 1e9).toFixed(2)} GMAC (${removed} MACs; ${sites.length} selections moved up through ${moved} ops)`,
        );
      }
      return result;
    },
  };
}

/** Rewrites every site: moved nodes are dropped and re-emitted at their gather. */
function sink(graph: Graph, sites: readonly SinkSite[]): Graph {
  const movedIds = new Set(sites.flatMap((s) => s.moved));
  const siteOf = new Map(sites.map((s) => [s.gather.id, s]));
  return rewriteGraph(graph, (node, { builder, map }) => {
    if (movedIds.has(node.id)) return null; // re-emitted at its gather, on kept tokens
    const site = siteOf.get(node.id);
    return site === undefined ? undefined : [emitSite(graph, site, builder, map)];
  });
}

/**
 * At the gather's place: the moved nodes again, in their order, on the kept tokens; returns
 * the last one, which stands for the gather. Carrier operands are the moved nodes' new
 * values or, where sinking stopped, a gather of that tensor (one per tensor, shared).
 */
function emitSite(
  graph: Graph,
  site: SinkSite,
  builder: GraphBuilder,
  map: (ref: TensorRef) => TensorRef,
): TensorRef {
  const { gather } = site;
  const idx = map(gather.inputs[1]!);
  const last = site.moved.at(-1)!;
  const emitted = new Map<number, TensorRef>();
  const frontier = new Map<string, TensorRef>();
  const kept = (ref: TensorRef): TensorRef => {
    const moved = emitted.get(ref.node);
    if (moved !== undefined) return moved;
    const key = `${ref.node}:${ref.output}`;
    let value = frontier.get(key);
    if (value === undefined) {
      value = builder.add1("gather", [map(ref), idx], gather.attrs, {
        name: `${graph.nodes[ref.node]!.name}.kept`,
        layer: gather.layer,
        role: null,
      });
      frontier.set(key, value);
    }
    return value;
  };
  for (const id of site.moved) {
    const original = graph.nodes[id]!;
    const slots = carrierSlots(graph, original, gather.attrs.axis)!;
    const inputs = original.inputs.map((ref, slot) =>
      slots.includes(slot) ? kept(ref) : map(ref),
    );
    const meta = id === last ? { ...metaOf(original), role: gather.role } : metaOf(original);
    emitted.set(id, builder.add1(original.op, inputs, original.attrs as never, meta));
  }
  return emitted.get(last)!;
}
