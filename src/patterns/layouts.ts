import { ConfigError } from "../ir/errors.js";
import type { AttentionPattern, BlockLayout, PaddingMode } from "../ir/pattern.js";
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
 *
 * Saturated rows (random > M - local, allowed only under padding "reference"). The authors
 * draw with rand = torch.rand(M, M), the local entries (m, (m + r) mod M) set to 0, then
 * topk(random) per row, sorted ascending. When random exceeds the M - local non-local
 * blocks, the topk takes every non-local block (the strictly positive entries) and then
 * random - (M - local) of the zeroed local entries, so the row reads those local blocks a
 * second time and their keys count twice in the softmax (conformance README, reference
 * behaviour 4). Nothing is left to chance for the non-local part; with local = 1 the extra
 * block is block m itself. For local > 1 torch does not specify which of the tied zeros
 * its topk returns: sprig takes the local blocks in ascending block order (the smallest
 * indices first). random > M makes torch's topk raise and is an error here too.
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
  /**
   * The padding mode the layout runs under: "reference" admits saturated rows (random up
   * to M, repeating local blocks as the authors' code does), "masked" only random <= M - local.
   */
  readonly padding: PaddingMode;
}

/** Whether rows of this layer are saturated: more random blocks than non-local blocks. */
function saturated(spec: SvittLayoutSpec): boolean {
  return spec.random > numBlocks(spec.localTokens, spec.blockSize) - spec.local;
}

/** Validates the SViTT sparsity hyper-parameters for one layer; `where` names the layer. */
export function checkSvittSpec(spec: SvittLayoutSpec, where: string): void {
  const { blockSize, local, random, localTokens, padding } = spec;
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
  const geometry = `${localTokens} tokens in M = ${blocks} blocks of ${blockSize}, local ${local}`;
  if (local > blocks) {
    throw new ConfigError(
      "sparsity.attention.local",
      `${where}: local window ${local} exceeds the ${blocks} blocks (${geometry})`,
    );
  }
  if (random > blocks) {
    throw new ConfigError(
      "sparsity.attention.random",
      `${where}: ${random} random blocks exceed the ${blocks} key blocks (${geometry}), more than the reference's topk can take; allowed 0..${padding === "reference" ? blocks : blocks - local} under padding "${padding}"`,
    );
  }
  if (random > blocks - local && padding !== "reference") {
    throw new ConfigError(
      "sparsity.attention.random",
      `${where}: ${random} random blocks exceed the ${blocks - local} non-local blocks (${geometry}); allowed 0..${blocks - local} under padding "${padding}" (padding "reference" allows up to ${blocks}, reading local blocks twice as the authors' code does)`,
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

/**
 * The random part of a saturated row (count > blocks - locals.length): every non-local
 * block, then the first count - (blocks - locals.length) local blocks in ascending block
 * order (sprig's choice among the reference's tied zero entries; torch does not specify
 * which of them its topk returns), all sorted ascending.
 */
function saturatedRandom(blocks: number, locals: readonly number[], count: number): number[] {
  const nonLocal: number[] = [];
  for (let b = 0; b < blocks; b++) if (!locals.includes(b)) nonLocal.push(b);
  const again = [...locals].sort((a, b) => a - b).slice(0, count - nonLocal.length);
  return [...nonLocal, ...again].sort((a, b) => a - b);
}

/**
 * Checks explicit random blocks of row m against what the reference's topk can return:
 * `random` distinct blocks (topk never repeats an index); outside the local blocks when
 * the row is not saturated; every non-local block when it is (they outrank the zeroed
 * local entries).
 */
function checkExplicitRow(
  spec: SvittLayoutSpec,
  row: readonly number[] | undefined,
  m: number,
  locals: readonly number[],
  where: string,
): readonly number[] {
  const blocks = numBlocks(spec.localTokens, spec.blockSize);
  const fail = (detail: string): never => {
    throw new ConfigError("sparsity.attention.randomBlocks", `${where}: row ${m} ${detail}`);
  };
  if (row === undefined || row.length !== spec.random) {
    fail(
      `${row === undefined ? "is missing" : `has ${row.length} blocks`}; expected ${blocks} rows of ${spec.random} random blocks`,
    );
  }
  const given = row!;
  const outside = given.find((b) => !(Number.isInteger(b) && b >= 0 && b < blocks));
  if (outside !== undefined) fail(`reads key block ${outside}, outside [0, ${blocks})`);
  if (new Set(given).size !== given.length) {
    fail(
      `repeats a random block in [${given.join(", ")}]; the reference's topk returns distinct blocks`,
    );
  }
  if (!saturated(spec)) {
    const clash = given.find((b) => locals.includes(b));
    if (clash !== undefined) {
      fail(
        `draws local block ${clash} at random; with ${spec.random} random blocks of ${blocks - spec.local} non-local ones the reference draws only non-local blocks`,
      );
    }
  } else {
    for (let b = 0; b < blocks; b++) {
      if (!locals.includes(b) && !given.includes(b)) {
        fail(
          `omits non-local block ${b}; with ${spec.random} random blocks of ${blocks - spec.local} non-local ones the reference takes every non-local block`,
        );
      }
    }
  }
  return given;
}

/** The random part of row m: drawn, derived (saturated rows) or given. */
function randomPart(
  spec: SvittLayoutSpec,
  rng: Rng | null,
  m: number,
  locals: readonly number[],
  where: string,
): readonly number[] {
  const blocks = numBlocks(spec.localTokens, spec.blockSize);
  const source = spec.randomBlocks;
  if ("explicit" in source) return checkExplicitRow(spec, source.explicit[m], m, locals, where);
  if (saturated(spec)) return saturatedRandom(blocks, locals, spec.random);
  return drawRandom(rng!, blocks, locals, spec.random);
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
      const randoms = randomPart(spec, rng, m, locals, where);
      data.set([...locals, ...randoms], (h * blocks + m) * width);
    }
  }
  const layout: BlockLayout = { heads, queryBlocks: blocks, blocksPerRow: width, blocks: data };
  const problems = layoutProblems(layout, spec.heads, spec.padding);
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

/**
 * A layout from explicit rows [heads][M][...] (or [M][...] for shared), validated for the
 * padding mode it will run under: only "reference" admits a row that repeats a block. Rows
 * of one length give a fixed layout; rows of different lengths (an empty one included) a
 * ragged one, every block full (token-level masks come from predicates: predicate.ts).
 */
export function customLayout(
  rows: readonly (readonly number[])[] | readonly (readonly (readonly number[])[])[],
  heads: number,
  padding: PaddingMode = "masked",
): BlockLayout {
  const perHead = Array.isArray(rows[0]?.[0]);
  const headRows = (perHead ? rows : [rows]) as readonly (readonly (readonly number[])[])[];
  const blocks = headRows[0]?.length ?? 0;
  headRows.forEach((hr, h) => {
    if (hr.length !== blocks)
      throw new ConfigError("layout", `head ${h} has ${hr.length} rows, expected ${blocks}`);
  });
  const all = headRows.flat();
  const width = Math.max(0, ...all.map((row) => row.length));
  const data = Int32Array.from(all.flat());
  const uniform = width >= 1 && all.every((row) => row.length === width);
  const rowStart = new Int32Array(all.length + 1);
  all.forEach((row, i) => {
    rowStart[i + 1] = rowStart[i]! + row.length;
  });
  const layout: BlockLayout = uniform
    ? { heads: headRows.length, queryBlocks: blocks, blocksPerRow: width, blocks: data }
    : { heads: headRows.length, queryBlocks: blocks, blocksPerRow: width, blocks: data, rowStart };
  const problems = layoutProblems(layout, heads, padding);
  if (problems.length > 0) throw new ConfigError("layout", problems.join("; "));
  return layout;
}
