/**
 * analyze-cost: an analysis pass. Records the cost report (MACs and bytes per node, per
 * layer, in total; see src/cost.ts) under its name in the pass context and returns the
 * graph unchanged.
 */
import { analyzeCost as costOf } from "../src/cost.js";
import type { Pass } from "../src/pass-manager.js";

export const ANALYZE_COST = "analyze-cost";

export function analyzeCost(): Pass {
  return {
    name: ANALYZE_COST,
    description: "count multiply-adds and bytes per node and layer",
    run(graph, context) {
      context.analyses.set(ANALYZE_COST, costOf(graph));
      return graph;
    },
  };
}
