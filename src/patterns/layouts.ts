import { ConfigError } from "../ir/errors.js";
import type { AttentionPattern, BlockLayout } from "../ir/pattern.js";
import { layoutProblems, numBlocks } from "../ir/pattern.js";
import { Rng } from "./random.js";

/**
 * Block layouts: which key blocks each query block reads.
 *
 * The SViTT layout (Li et al., CVPR 2023; the authors' `sparse_attention`): query block m
 * reads the `local` blocks around it, (m + r) mod M for r = -local/2 .. local/2, then
 * `random` further blocks drawn without replacement from the blocks not already local,
 * sorted ascending. The authors draw them with torch.rand on every forward call; sprig
 * draws them once at compile time from a seeded generator (or takes them explicitly, as
 * the conformance cases do), which makes the compiled graph static.
 */

export interface SvittLayoutSpec {
  readonly localTokens: number;
  readonly blockSize: number;
  /** Local window in blocks: 0 or odd. */
  readonly local: number;
  readonly random: number;
  /** Heads that get their own random draw; 1 = one layout shared by all heads. */
  readonly heads: number;
  /** Seed for the random blocks, or explicit random blocks [M][random] (shared by heads). */
  readonly randomBlocks:
    | { readonly seed: number; readonly stream: string }
    | { readonly explicit: readonly (readonly number[])[] };
}

/** Validates the SViTT sparsity hyper-parameters for one layer; `where` names the layer. */
export function checkSvittSpec(spec: SvittLayoutSpec, where: string): void {
  const { blockSize, local, random, localTokens } = spec;
  if (!(Number.isInteger(blockSize) && blockSize >= 1)) {
    throw new ConfigError(
      "sparsity.attention.blockSize",
      `must be an integer >= 1, got ${blockSize}`,
    );
  }
  if (!(Number.isInteger(local) && local >= 0 && (local === 0 || local % 2 === 1))) {
    throw new ConfigError("sparsity.attention.local", `must be 0 or an odd integer, got ${local}`);
  }
  if (!(Number.isInteger(random) && random >= 0)) {
    throw new ConfigError("sparsity.attention.random", `must be an integer >= 0, got ${random}`);
  }
  if (local + random < 1) {
    throw new ConfigError("sparsity.attention", "local + random must be at least 1 key block");
  }
  const blocks = numBlocks(localTokens, blockSize);
  if (local > blocks) {
    throw new ConfigError(
      "sparsity.attention.local",
      `${where}: local window ${local} exceeds the ${blocks} blocks of ${localTokens} tokens at block size ${blockSize}`,
    );
  }
  if (random > blocks - local) {
    throw new ConfigError(
      "sparsity.attention.random",
      `${where}: ${random} random blocks exceed the ${blocks - local} non-local blocks (${localTokens} tokens in ${blocks} blocks of ${blockSize}, local ${local}); allowed 0..${blocks - local}`,
    );
  }
}

/** Local blocks of query block m, in the reference's roll order. */
function localBlocks(m: number, blocks: number, local: number): number[] {
  const half = (local - 1) / 2;
  const out: number[] = [];
  for (let r = -half; r <= half; r++) out.push((((m + r) % blocks) + blocks) % blocks);
  return out;
}

/** Draws `count` distinct blocks of [0, blocks) outside `exclude`, sorted ascending. */
function drawRandom(rng: Rng, blocks: number, exclude: readonly number[], count: number): number[] {
  const pool: number[] = [];
  for (let b = 0; b < blocks; b++) if (!exclude.includes(b)) pool.push(b);
  // Partial Fisher-Yates: the first `count` entries become a uniform sample.
  for (let i = 0; i < count; i++) {
    const j = i + rng.below(pool.length - i);
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, count).sort((a, b) => a - b);
}

export function svittLayout(spec: SvittLayoutSpec, where: string): BlockLayout {
  checkSvittSpec(spec, where);
  const blocks = numBlocks(spec.localTokens, spec.blockSize);
  const width = spec.local + spec.random;
  const source = spec.randomBlocks;
  const heads = "explicit" in source ? 1 : spec.heads;
  const data = new Int32Array(heads * blocks * width);
  for (let h = 0; h < heads; h++) {
    const rng = "seed" in source ? Rng.stream(source.seed, `${source.stream}/head${h}`) : null;
    for (let m = 0; m < blocks; m++) {
      const locals = localBlocks(m, blocks, spec.local);
      let randoms: number[];
      if (rng !== null) {
        randoms = drawRandom(rng, blocks, locals, spec.random);
      } else {
        const row = (source as { explicit: readonly (readonly number[])[] }).explicit[m];
        if (row === undefined || row.length !== spec.random) {
          throw new ConfigError(
            "sparsity.attention.randomBlocks",
            `${where}: expected ${blocks} rows of ${spec.random} random blocks, row ${m} is ${row === undefined ? "missing" : `of length ${row.length}`}`,
          );
        }
        randoms = [...row];
      }
      data.set([...locals, ...randoms], (h * blocks + m) * width);
    }
  }
  const layout: BlockLayout = { heads, queryBlocks: blocks, blocksPerRow: width, blocks: data };
  const problems = layoutProblems(layout, spec.heads);
  if (problems.length > 0) {
    throw new ConfigError("sparsity.attention.randomBlocks", `${where}: ${problems.join("; ")}`);
  }
  return layout;
}

export function svittPattern(
  spec: SvittLayoutSpec,
  globalTokens: number,
  where: string,
): AttentionPattern {
  return {
    globalTokens,
    blockSize: spec.blockSize,
    layout: svittLayout(spec, where),
    origin: {
      kind: "svitt",
      local: spec.local,
      random: spec.random,
      seed: "seed" in spec.randomBlocks ? spec.randomBlocks.seed : null,
    },
  };
}

/** Every query block reads every key block: the block-sparse form of dense attention. */
export function denseLayout(localTokens: number, blockSize: number): BlockLayout {
  const blocks = numBlocks(localTokens, blockSize);
  const data = new Int32Array(blocks * blocks);
  for (let m = 0; m < blocks; m++) for (let j = 0; j < blocks; j++) data[m * blocks + j] = j;
  return { heads: 1, queryBlocks: blocks, blocksPerRow: blocks, blocks: data };
}

/** A layout from explicit rows [heads][M][W] (or [M][W] for shared), validated. */
export function customLayout(
  rows: readonly (readonly number[])[] | readonly (readonly (readonly number[])[])[],
  heads: number,
): BlockLayout {
  const perHead = Array.isArray(rows[0]?.[0]);
  const headRows = (perHead ? rows : [rows]) as readonly (readonly (readonly number[])[])[];
  const blocks = headRows[0]?.length ?? 0;
  const width = headRows[0]?.[0]?.length ?? 0;
  const data = new Int32Array(headRows.length * blocks * width);
  headRows.forEach((hr, h) => {
    if (hr.length !== blocks)
      throw new ConfigError("layout", `head ${h} has ${hr.length} rows, expected ${blocks}`);
    hr.forEach((row, m) => {
      if (row.length !== width)
        throw new ConfigError(
          "layout",
          `head ${h} row ${m} has ${row.length} blocks, expected ${width}`,
        );
      data.set(row, (h * blocks + m) * width);
    });
  });
  const layout: BlockLayout = {
    heads: headRows.length,
    queryBlocks: blocks,
    blocksPerRow: width,
    blocks: data,
  };
  const problems = layoutProblems(layout, heads);
  if (problems.length > 0) throw new ConfigError("layout", problems.join("; "));
  return layout;
}
