/**
 * What the suites share: which backends to measure, and timing one graph on one backend as
 * a benny case (compiled once in set-up, one untimed warm-up run, freed after the suite).
 */
import {
  type BackendName,
  costOf,
  type Graph,
  type HostTensor,
  initWeights,
  loadBackend,
} from "../src/index.js";
import type { BenchCase } from "./harness.js";

/**
 * Backends that can run here, in the order given, each with the detail of what ran; the
 * others are listed with the reason so that a table never silently lacks a row.
 */
export async function availableBackends(
  names: readonly BackendName[],
): Promise<{ ready: BackendName[]; skipped: string[] }> {
  const ready: BackendName[] = [];
  const skipped: string[] = [];
  for (const name of names) {
    const availability = await (await loadBackend(name)).availability();
    if (availability.ok) ready.push(name);
    else skipped.push(`${name}: ${availability.reason}`);
  }
  return { ready, skipped };
}

/** A benny case that runs `graph` on `backend` with seeded weights and the given inputs. */
export function graphCase(
  name: string,
  backend: BackendName,
  graph: Graph,
  inputs: Readonly<Record<string, HostTensor>>,
  macs: number = costOf(graph).totals.macs,
): BenchCase {
  return {
    name,
    macs,
    setup: async () => {
      const executable = await (await loadBackend(backend)).compile(graph, initWeights(graph, 0));
      await executable.run(inputs);
      return { run: () => executable.run(inputs), dispose: () => executable.dispose() };
    },
  };
}
