/**
 * Compile time: building the BEiT-base vision encoder and running the whole SViTT pipeline
 * (prune-tokens, sparsify-attention, dead-code elimination, cost analysis, with the
 * verifier after every pass) at 4, 8 and 16 frames. Target (issue 2): under 100 ms for 16
 * frames on the project machine.
 *
 *   npx tsx bench/compile.bench.ts
 */
import { compileVision, visionPreset } from "../src/index.js";
import { markdownTable, runSuite, type SuiteSummary } from "./harness.js";

export async function benchCompile(): Promise<SuiteSummary> {
  const cases = [4, 8, 16].flatMap((frames) =>
    (["svitt", "dense"] as const).map((variant) => ({
      name: `compile ${variant} ${frames}f`,
      setup: () => () => compileVision(visionPreset(frames, variant)),
    })),
  );
  return runSuite("compile", cases, { minSamples: 20, maxTime: 3 });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const summary = await benchCompile();
  console.log(markdownTable(summary));
}
