/**
 * A sparsity pattern of your own, in sprig's pattern language: a predicate over token
 * coordinates (frame t, patch row y, patch column x, and the index in the current token
 * order), here "each token reads a 5 x 5 patch neighbourhood in its own frame and its own
 * position in the two frames before", combined with a library pattern and given to half the
 * heads. sprig compiles it for every layer's token count (after SViTT's token drops too),
 * prints its cost against SViTT and dense attention, draws layer 0 (to the file named on the
 * command line, default custom-pattern.png in the system's temporary folder), and runs a
 * small version on the fastest backend here, compared with the reference backend.
 *
 *   npx tsx examples/custom-pattern.ts [picture.png|picture.svg]
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  compileVision,
  definePattern,
  formatCostTable,
  type HostTensor,
  initWeights,
  layerPatternScene,
  loadBackend,
  parsePattern,
  patternAtLayer,
  perHead,
  pickBackend,
  syntheticClip,
  union,
  type VisionModelSpec,
  visionPreset,
  writePicture,
} from "../src/index.js";

/** q reads k in its own frame within 2 patches each way, or at its position 1-2 frames back. */
const neighbourhood = definePattern({
  label: "5x5 in frame + 2 frames back",
  reads: (q, k) =>
    (q.t === k.t && Math.abs(q.y - k.y) <= 2 && Math.abs(q.x - k.x) <= 2) ||
    (q.y === k.y && q.x === k.x && k.t < q.t && k.t >= q.t - 2),
  // Optional, to compile faster: a pair of blocks whose frames are 3 or more apart reads nothing.
  blocks: (q, k) => (k.t[1] < q.t[0] - 2 || k.t[0] > q.t[1] ? "none" : "some"),
});

// Half the heads read the neighbourhood, half a 3-D window; every head also reads
// its sliding window of 28 tokens in the token order.
const mine = union(
  perHead([neighbourhood, parsePattern("window3d:1x7x7")]),
  parsePattern("window:w=28"),
);

const spec8 = visionPreset(8, "svitt");
const svitt = compileVision(spec8);
const custom = compileVision(spec8, { attentionPattern: mine });
const dense = compileVision(visionPreset(8, "dense"));
const gmac = (macs: number) => `${(macs / 1e9).toFixed(2)} GMAC`;
console.log(`${mine.label}, with SViTT's token drops, 8 frames:\n${formatCostTable(custom.cost)}`);
console.log(
  `\nfor comparison: SViTT ${gmac(svitt.cost.totals.macs)}, dense ${gmac(dense.cost.totals.macs)}\n`,
);
const picture = layerPatternScene(patternAtLayer(custom.graph, 0), { title: "layer 0, head 0" });
const out = process.argv[2] ?? join(tmpdir(), "custom-pattern.png");
await writePicture(out, picture);
console.log(`layer 0 drawn to ${out} (${picture.width} x ${picture.height})\n`);

function maxAbsDiff(a: HostTensor, b: HostTensor): number {
  let worst = 0;
  for (let i = 0; i < a.data.length; i++)
    worst = Math.max(worst, Math.abs(a.data[i]! - b.data[i]!));
  return worst;
}

// A small clip and model, so that the reference backend is quick: 2 frames, 4 layers, keep
// 0.7 after layer 1 (392 -> 275 tokens: the layers after the drop get spread coordinates).
const preset2 = visionPreset(2, "svitt");
const spec2: VisionModelSpec = {
  ...preset2,
  model: { ...preset2.model, numLayers: 4 },
  sparsity: { ...preset2.sparsity, tokens: { keepRate: 0.7, dropAfter: [1] } },
};
const fast = await pickBackend(undefined);
const reference = await loadBackend("reference");
for (const [name, graph] of [
  ["SViTT", compileVision(spec2).graph],
  ["custom", compileVision(spec2, { attentionPattern: mine }).graph],
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
