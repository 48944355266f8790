/**
 * A sparsity pattern of your own: a dilated block layout (each query block reads itself
 * and the blocks 2, 4, 8 ... away, wrapping around) in place of SViTT's local + random
 * blocks, with SViTT's token drops kept. Prints the cost against SViTT and dense, then runs
 * a small version of both sparse variants (2 frames, 4 layers, one drop after layer 1) on
 * the fastest backend here and compares each with the reference backend.
 *
 *   npx tsx examples/custom-pattern.ts
 */
import {
  type AttentionSite,
  buildVisionModel,
  compileVision,
  costOf,
  customLayout,
  eliminateDeadCode,
  formatCostTable,
  type Graph,
  type HostTensor,
  initWeights,
  loadBackend,
  numBlocks,
  pickBackend,
  pruneTokens,
  runPasses,
  sparsifyAttention,
  syntheticClip,
  type VisionModelSpec,
  visionPreset,
} from "../src/index.js";

const BLOCK = 56;

/** Row m reads block m and the blocks m ± 2^i (mod M), as many as fit in `width`. */
function dilatedLayout(site: AttentionSite, width: number) {
  const blocks = numBlocks(site.localTokens, BLOCK);
  const rows: number[][] = [];
  for (let m = 0; m < blocks; m++) {
    const row = new Set([m]);
    for (let step = 2; row.size < Math.min(width, blocks) && step < 2 * blocks; step *= 2) {
      row.add((m + step) % blocks);
      if (row.size < Math.min(width, blocks)) row.add((m - step + blocks * 8) % blocks);
    }
    rows.push([...row].sort((a, b) => a - b));
  }
  return customLayout(rows, site.heads);
}

/** The dense encoder of `spec`, with the dilated pattern and SViTT's drops. */
function compileDilated(spec: VisionModelSpec): Graph {
  const dense = buildVisionModel(spec);
  return runPasses(dense, [
    pruneTokens({
      keepRate: spec.sparsity.tokens!.keepRate,
      afterLayers: spec.sparsity.tokens!.dropAfter,
    }),
    sparsifyAttention({
      pattern: {
        kind: "custom",
        blockSize: BLOCK,
        label: "dilated 1+2^i",
        layout: (site) => dilatedLayout(site, 4),
      },
      padding: "reference",
    }),
    eliminateDeadCode(),
  ]).graph;
}

function maxAbsDiff(a: HostTensor, b: HostTensor): number {
  let worst = 0;
  for (let i = 0; i < a.data.length; i++)
    worst = Math.max(worst, Math.abs(a.data[i]! - b.data[i]!));
  return worst;
}

const spec8 = visionPreset(8, "svitt");
const svitt = compileVision(spec8);
const dilated = compileDilated(spec8);
const denseCost = compileVision(visionPreset(8, "dense")).cost;
const gmac = (macs: number) => `${(macs / 1e9).toFixed(2)} GMAC`;
console.log(
  `dilated pattern with SViTT's token drops, 8 frames:\n${formatCostTable(costOf(dilated))}`,
);
console.log(
  `\nfor comparison: SViTT ${gmac(svitt.cost.totals.macs)}, dense ${gmac(denseCost.totals.macs)}\n`,
);

// A small clip and model, so that the reference backend is quick: 2 frames (392 local
// tokens, 7 blocks of 56), 4 layers, keep 0.7 after layer 1 (275 tokens, 5 blocks).
const preset2 = visionPreset(2, "svitt");
const spec1: VisionModelSpec = {
  ...preset2,
  model: { ...preset2.model, numLayers: 4 },
  sparsity: { ...preset2.sparsity, tokens: { keepRate: 0.7, dropAfter: [1] } },
};
const fast = await pickBackend(undefined);
const reference = await loadBackend("reference");
for (const [name, graph] of [
  ["SViTT", compileVision(spec1).graph],
  ["dilated", compileDilated(spec1)],
] as const) {
  const weights = initWeights(graph, 0);
  const inputs = syntheticClip(graph, 0);
  const want = await (await reference.compile(graph, weights)).run(inputs);
  const executable = await fast.compile(graph, weights);
  const got = await executable.run(inputs);
  executable.dispose();
  const diff = maxAbsDiff(got.last_hidden_state!, want.last_hidden_state!);
  console.log(
    `${name}, 2 frames, 4 layers, on ${fast.name}: last_hidden_state max |${fast.name} - reference| = ${diff.toExponential(2)}`,
  );
}
