import { type DebugLevel, type DebugSink, debugLevelFromEnv, stderrSink } from "./debug.js";
import { SprigError } from "./ir/errors.js";
import type { Graph } from "./ir/graph.js";
import { printGraph } from "./ir/print.js";
import { verifyGraph } from "./ir/verify.js";

/** What every pass can read besides the graph: debug settings and earlier analyses. */
export interface PassContext {
  readonly debug: DebugLevel;
  readonly log: DebugSink;
  /** Results of analysis passes by pass name (e.g. "analyze-cost" -> CostReport). */
  readonly analyses: Map<string, unknown>;
}

/**
 * A pass: a named graph -> graph function with a one-line reason. `requires` lists passes
 * that must already have run in the same pipeline (e.g. sparsify-attention derives
 * layouts from token counts, so it requires prune-tokens when both are used).
 */
export interface Pass {
  readonly name: string;
  readonly description: string;
  readonly requires?: readonly string[];
  run(graph: Graph, context: PassContext): Graph;
}

export interface PassTiming {
  readonly pass: string;
  readonly ms: number;
  readonly nodesBefore: number;
  readonly nodesAfter: number;
}

export interface PipelineResult {
  readonly graph: Graph;
  readonly timings: readonly PassTiming[];
  readonly analyses: ReadonlyMap<string, unknown>;
}

export class PassOrderError extends SprigError {
  override readonly name = "PassOrderError";
}

/**
 * Runs passes in order, verifying the graph before the first and after every pass (a
 * violated invariant names the pass that broke it) and timing each one.
 */
export function runPasses(
  graph: Graph,
  passes: readonly Pass[],
  options: { debug?: DebugLevel; log?: DebugSink } = {},
): PipelineResult {
  const context: PassContext = {
    debug: options.debug ?? debugLevelFromEnv(),
    log: options.log ?? stderrSink,
    analyses: new Map(),
  };
  verifyGraph(graph);
  const done: string[] = [];
  const timings: PassTiming[] = [];
  let current = graph;
  for (const pass of passes) {
    for (const needed of pass.requires ?? []) {
      if (!done.includes(needed)) {
        throw new PassOrderError(`pass ${pass.name} requires ${needed} to run before it`);
      }
    }
    const start = performance.now();
    const next = pass.run(current, context);
    const ms = performance.now() - start;
    try {
      verifyGraph(next);
    } catch (error) {
      if (error instanceof SprigError) {
        error.message = `after pass ${pass.name}: ${error.message}`;
      }
      throw error;
    }
    timings.push({
      pass: pass.name,
      ms,
      nodesBefore: current.nodes.length,
      nodesAfter: next.nodes.length,
    });
    if (context.debug >= 1) {
      context.log(
        `pass ${pass.name}: ${ms.toFixed(2)} ms, ${current.nodes.length} -> ${next.nodes.length} nodes`,
      );
    }
    if (context.debug >= 2) context.log(`graph after ${pass.name}:\n${printGraph(next)}`);
    done.push(pass.name);
    current = next;
  }
  return { graph: current, timings, analyses: context.analyses };
}
