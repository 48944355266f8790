/**
 * Each backend's 2-D matmul rate, the yardstick the encoder's efficiency is measured
 * against (issue 3): y = x Wᵀ with x [1577, 768] and W [768, 768] (one BEiT linear layer
 * at 8 frames plus padding, the shape of ../shared/design/platform-facts.md), as a sprig
 * graph of one `linear` node, so that each backend runs it through its own lowering.
 *
 *   npx tsx bench/matmul.bench.ts [backend ...]
 */
import { type BackendName, GraphBuilder, syntheticClip } from "../src/index.js";
import { availableBackends, graphCase } from "./common.js";
import { markdownTable, runSuite, type SuiteSummary } from "./harness.js";

export const MATMUL_ROWS = 1577;
export const MATMUL_WIDTH = 768;

export function matmulGraph(rows = MATMUL_ROWS, width = MATMUL_WIDTH) {
  const b = new GraphBuilder(`matmul_${rows}x${width}x${width}`);
  const x = b.input("x", { dtype: "f32", shape: [rows, width] });
  b.output("y", b.add1("linear", [x, b.weight("weight", [width, width])], {}));
  return b.build();
}

export function matmulCaseName(backend: string): string {
  return `matmul ${backend}`;
}

export async function benchMatmul(backends: readonly BackendName[]): Promise<SuiteSummary> {
  const graph = matmulGraph();
  const inputs = syntheticClip(graph, 0);
  return runSuite(
    "matmul",
    backends.map((backend) => graphCase(matmulCaseName(backend), backend, graph, inputs)),
    { minSamples: 10, maxTime: 3 },
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = process.argv.slice(2) as BackendName[];
  const { ready, skipped } = await availableBackends(
    wanted.length > 0 ? wanted : ["onnx", "tfjs-wasm", "tfjs-cpu"],
  );
  for (const line of skipped) console.log(`skipped ${line}`);
  console.log(markdownTable(await benchMatmul(ready)));
}
