/**
 * The pattern library (src/patterns/library/) and the language it is written in
 * (src/patterns/language.ts):
 * - each pattern reads exactly the pairs its source describes, stated independently here
 *   over the tokens' coordinates (SViTT's: exactly the layout of src/patterns/layouts.ts);
 * - block bounds are sound: compiling with them gives the layout compiling without them does,
 *   for every pattern, grid, block size, token order and spread layer, and they spare most
 *   predicate calls where they should;
 * - combinators and per-head assignment read what their definitions say;
 * - pattern specs parse (operators, heads(...), parameters) and refuse what is wrong, naming it;
 * - coordinates are exact before a drop, spread after one, and refused where asked.
 */
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/ir/errors.js";
import { type BlockLayout, layoutRow, numBlocks } from "../../src/ir/pattern.js";
import {
  compilePattern,
  definePattern,
  difference,
  intersection,
  layerTokens,
  type Pattern,
  type PatternContext,
  patternContext,
  perHead,
  type Token,
  union,
} from "../../src/patterns/language.js";
import { svittLayout } from "../../src/patterns/layouts.js";
import { LIBRARY, libraryEntry, parsePattern } from "../../src/patterns/library/index.js";
import { permutation, rng } from "../models/support.js";
import { planReads, SMALL_SPECS } from "./support.js";

type Grid = readonly [number, number, number];

function context(
  grid: Grid,
  blockSize: number,
  extra: { heads?: number; order?: Int32Array | null; localTokens?: number; seed?: number } = {},
): PatternContext {
  const all = grid[0] * grid[1] * grid[2];
  return patternContext({
    localTokens: extra.localTokens ?? all,
    blockSize,
    heads: extra.heads ?? 1,
    grid,
    order: extra.order ?? null,
    seed: extra.seed ?? 0,
    stream: "attention/layer0",
  });
}

/** Every (head, q, k) on which the compiled layout and `expected` disagree (at most 3). */
function disagreements(
  layout: BlockLayout,
  ctx: PatternContext,
  expected: (q: Token, k: Token, h: number) => boolean,
): string[] {
  const reads = planReads(layout, ctx.blockSize, ctx.localTokens, ctx.heads);
  const tokens = ctx.tokens.tokens;
  const found: string[] = [];
  for (let h = 0; h < ctx.heads; h++) {
    for (const q of tokens) {
      for (const k of tokens) {
        if (reads(h, q.index, k.index) !== expected(q, k, h) && found.length < 3) {
          found.push(`head ${h}: q ${JSON.stringify(q)} k ${JSON.stringify(k)}`);
        }
      }
    }
  }
  return found;
}

/** NATTEN's neighbourhood along one axis (window3d.test.ts states it from NATTEN's docs). */
function nattenAxis(n: number, k: number, d: number, qi: number, ki: number): boolean {
  if (qi % d !== ki % d) return false;
  const group = Math.floor((n - 1 - (qi % d)) / d) + 1;
  const index = Math.floor(qi / d);
  const start = Math.min(Math.max(index - (k - 1) / 2, 0), group - k);
  const offset = Math.floor(ki / d) - start;
  return offset >= 0 && offset < k;
}

/** What each pattern reads, from its source's definition (not from the library's code). */
const STATED: Record<string, (grid: Grid) => (q: Token, k: Token) => boolean> = {
  dense: () => () => true,
  "window:w=5": () => (q, k) => Math.abs(q.index - k.index) <= 5,
  "window3d:3x3x3": (g) => (q, k) =>
    nattenAxis(g[0], 3, 1, q.t, k.t) &&
    nattenAxis(g[1], 3, 1, q.y, k.y) &&
    nattenAxis(g[2], 3, 1, q.x, k.x),
  "window3d:kernel=1x3x3,dilation=1x2x1": (g) => (q, k) =>
    q.t === k.t && nattenAxis(g[1], 3, 2, q.y, k.y) && nattenAxis(g[2], 3, 1, q.x, k.x),
  // TimeSformer: the same frame, or the same spatial position in any frame.
  divided: () => (q, k) => q.t === k.t || (q.y === k.y && q.x === k.x),
  "strided:stride=12,local=2": () => (q, k) =>
    Math.abs(q.index - k.index) <= 2 || Math.abs(q.index - k.index) % 12 === 0,
  // Longformer: i ± n·d for n = 0 .. w.
  "dilated:w=3,d=3": () => (q, k) => {
    const gap = Math.abs(q.index - k.index);
    return [0, 3, 6, 9].includes(gap);
  },
  causal: () => (q, k) => k.t <= q.t,
  "causal:frames=1": () => (q, k) => k.t === q.t,
};

const GRIDS: readonly Grid[] = [
  [3, 6, 4],
  [4, 6, 5],
  [3, 6, 6],
];

describe("the library", () => {
  it("lists every pattern file of src/patterns/library/", () => {
    const folder = fileURLToPath(new URL("../../src/patterns/library/", import.meta.url));
    const files = readdirSync(folder)
      .filter((file) => file.endsWith(".ts") && file !== "index.ts" && file !== "entry.ts")
      .map((file) => file.replace(/\.ts$/, ""))
      .sort();
    expect(files).toEqual(LIBRARY.map((entry) => entry.name).sort());
  });

  it("has one entry per name, each with a summary, a source and valid defaults", () => {
    const names = LIBRARY.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining([
        "svitt",
        "dense",
        "window",
        "window3d",
        "divided",
        "strided",
        "dilated",
        "bigbird",
        "causal",
      ]),
    );
    for (const entry of LIBRARY) {
      // Its own small specs put a new pattern in the mask-equivalence property.
      expect(entry.smallSpecs.length, entry.name).toBeGreaterThan(0);
      for (const spec of entry.smallSpecs) {
        expect(spec === entry.name || spec.startsWith(`${entry.name}:`), spec).toBe(true);
        expect(() => parsePattern(spec), spec).not.toThrow();
      }
      expect(entry.summary.length).toBeGreaterThan(10);
      expect(entry.source.length).toBeGreaterThan(10);
      expect(parsePattern(entry.name).label.length).toBeGreaterThan(0);
    }
  });

  for (const [spec, stated] of Object.entries(STATED)) {
    it(`${spec} reads what its source states, on every grid and block size`, () => {
      for (const grid of GRIDS) {
        for (const bs of [1, 5, 8, 13]) {
          const ctx = context(grid, bs);
          const layout = compilePattern(parsePattern(spec), ctx);
          expect(disagreements(layout, ctx, stated(grid))).toEqual([]);
        }
      }
    });
  }

  it("svitt alone is exactly SViTT's layout (its block order and seeded draw), per head too", () => {
    for (const heads of [1, 3]) {
      const ctx = { ...context([3, 6, 4], 8, { heads, seed: 7 }), perHeadRandom: heads > 1 };
      const layout = compilePattern(parsePattern("svitt:local=1,random=2"), ctx);
      const want = svittLayout(
        {
          localTokens: 72,
          blockSize: 8,
          local: 1,
          random: 2,
          heads,
          randomBlocks: { seed: 7, stream: "attention/layer0" },
          padding: "masked",
        },
        "test",
      );
      expect(layout).toEqual(want);
    }
  });

  it("svitt inside a combinator reads the blocks of its layout's rows", () => {
    const ctx = context([3, 6, 4], 8);
    const rows = compilePattern(parsePattern("svitt:local=1,random=2"), ctx);
    const layout = compilePattern(parsePattern("svitt:local=1,random=2 + causal:frames=1"), ctx);
    const inRow = (q: Token, k: Token) =>
      layoutRow(rows, 0, Math.floor(q.index / 8)).includes(Math.floor(k.index / 8));
    expect(disagreements(layout, ctx, (q, k) => inRow(q, k) || q.t === k.t)).toEqual([]);
  });

  it("bigbird: global tokens both ways, its window of blocks, and `random` seeded blocks outside both", () => {
    const grid: Grid = [4, 6, 5];
    const bs = 6;
    const blocks = numBlocks(120, bs);
    for (const seed of [0, 1]) {
      const ctx = context(grid, bs, { seed });
      const layout = compilePattern(parsePattern("bigbird:global=8,window=3,random=2"), ctx);
      const reads = planReads(layout, bs, 120, 1);
      // Block 0 (tokens 0-5) holds global queries only: every row after it is checked.
      for (let m = 1; m < blocks; m++) {
        const extra = new Set<number>();
        for (let kb = 0; kb < blocks; kb++) {
          // The pairs of non-global tokens of (m, kb) are read all or not at all.
          const q = Math.max(m * bs, 8);
          const k = Math.max(kb * bs, 8);
          if (q >= (m + 1) * bs || k >= (kb + 1) * bs) continue;
          const read = reads(0, q, k);
          if (Math.abs(m - kb) <= 1) expect(read).toBe(true);
          else if (read) extra.add(kb);
          for (let g = 0; g < 8; g++) {
            expect(reads(0, g, kb * bs)).toBe(true);
            expect(reads(0, m * bs, g)).toBe(true);
          }
        }
        // Outside the window (and the one all-global block 0), exactly 2 random blocks.
        const free = [...Array(blocks).keys()].filter((b) => Math.abs(m - b) > 1 && b !== 0);
        expect(extra.size).toBe(Math.min(2, free.length));
        for (const b of extra) expect(free).toContain(b);
      }
    }
    const a = compilePattern(
      parsePattern("bigbird:global=8,window=3,random=2"),
      context(grid, bs, { seed: 0 }),
    );
    const b = compilePattern(
      parsePattern("bigbird:global=8,window=3,random=2"),
      context(grid, bs, { seed: 1 }),
    );
    const again = compilePattern(
      parsePattern("bigbird:global=8,window=3,random=2"),
      context(grid, bs, { seed: 0 }),
    );
    expect(a).toEqual(again);
    expect(a).not.toEqual(b);
  });
});

describe("block bounds", () => {
  it("give the layout asking every pair gives, for every pattern, grid, block size and order", () => {
    fc.assert(
      fc.property(
        fc.record({
          spec: fc.constantFrom(...SMALL_SPECS),
          grid: fc.constantFrom(...GRIDS),
          blockSize: fc.integer({ min: 1, max: 20 }),
          reordered: fc.boolean(),
          kept: fc.double({ min: 0.3, max: 1, noNaN: true }),
          heads: fc.integer({ min: 2, max: 3 }),
          seed: fc.nat(1000),
        }),
        ({ spec, grid, blockSize, reordered, kept, heads, seed }) => {
          const all = grid[0] * grid[1] * grid[2];
          const order = reordered ? Int32Array.from(permutation(all, rng(seed))) : null;
          const localTokens = Math.max(2 * blockSize, Math.ceil(kept * all));
          if (localTokens > all) return;
          const ctx = context(grid, blockSize, { heads, order, localTokens, seed });
          const pattern = parsePattern(`heads(${spec}; divided) - causal:frames=2`);
          for (const p of [parsePattern(spec), pattern]) {
            expect(compilePattern(p, ctx)).toEqual(compilePattern(p, ctx, { ignoreBounds: true }));
          }
        },
      ),
      { numRuns: 150, seed: 4 },
    );
  });

  it("spare most predicate calls of a 3-D window at 16 frames (block-aware compile)", () => {
    let calls = 0;
    const window = parsePattern("window3d:3x7x7");
    const counted: Pattern = {
      ...window,
      at: (ctx) => {
        const inner = window.at(ctx);
        return {
          ...inner,
          reads: (q, k, h) => {
            calls++;
            return inner.reads(q, k, h);
          },
        };
      },
    };
    const ctx = context([16, 14, 14], 56);
    const layout = compilePattern(counted, ctx);
    expect(layout).toEqual(compilePattern(window, ctx, { ignoreBounds: true }));
    // The pairs asked are those of the blocks left partial (3136 = 56 blocks of 56), and few
    // more: about a fifth of the 3136² = 9.8 M pairs a predicate-only compile asks.
    const partial = layout.entryMask!.filter((k) => k >= 0).length * 56 * 56;
    expect(calls).toBeGreaterThanOrEqual(partial);
    expect(calls).toBeLessThan(1.2 * partial);
    expect(calls).toBeLessThan(0.25 * 3136 * 3136);
  });
});

describe("combinators and heads", () => {
  const grid: Grid = [3, 6, 4];
  const a = parsePattern("window:w=5");
  const b = parsePattern("divided");
  const ctx = context(grid, 7);
  const readA = STATED["window:w=5"]!(grid);
  const readB = STATED.divided!(grid);

  it("union, intersection and difference read the set operations of their parts", () => {
    expect(
      disagreements(compilePattern(union(a, b), ctx), ctx, (q, k) => readA(q, k) || readB(q, k)),
    ).toEqual([]);
    expect(
      disagreements(
        compilePattern(intersection(a, b), ctx),
        ctx,
        (q, k) => readA(q, k) && readB(q, k),
      ),
    ).toEqual([]);
    expect(
      disagreements(
        compilePattern(difference(a, b), ctx),
        ctx,
        (q, k) => readA(q, k) && !readB(q, k),
      ),
    ).toEqual([]);
  });

  it("heads(...) gives each pattern a consecutive group of heads, compiled once per group", () => {
    const heads = 5;
    const perHeadCtx = context(grid, 7, { heads });
    const layout = compilePattern(perHead([a, b]), perHeadCtx);
    expect(layout.heads).toBe(5);
    // 5 heads, 2 patterns: heads 0-2 (⌊h·2/5⌋ = 0) read a, heads 3-4 read b.
    const expected = (q: Token, k: Token, h: number) => (h < 3 ? readA(q, k) : readB(q, k));
    expect(disagreements(layout, perHeadCtx, expected)).toEqual([]);
    expect(() => compilePattern(perHead([a, b, a]), context(grid, 7, { heads: 2 }))).toThrow(
      /heads\(\.\.\.\) lists 3 patterns for 2 attention heads/,
    );
  });

  it("a user predicate may depend on the head", () => {
    const heads = 3;
    const ctxHeads = context(grid, 7, { heads });
    const mine = definePattern({
      label: "mine",
      perHead: true,
      reads: (q, k, h) => (q.index + k.index + h) % 3 === 0,
    });
    const layout = compilePattern(mine, ctxHeads);
    expect(disagreements(layout, ctxHeads, (q, k, h) => (q.index + k.index + h) % 3 === 0)).toEqual(
      [],
    );
  });
});

describe("pattern specs", () => {
  it("parse names, parameters, operators and heads(...)", () => {
    expect(parsePattern("window3d").label).toBe("window3d 3x7x7");
    expect(parsePattern("window3d:1x5x5").label).toBe("window3d 1x5x5");
    expect(parsePattern("window3d:kernel=1x5x5,dilation=1x2x2").label).toBe(
      "window3d 1x5x5, dilation 1x2x2",
    );
    expect(parsePattern("window:w=7").label).toBe("window w=7");
    expect(parsePattern("divided + causal").label).toBe("divided space-time + causal in time");
    expect(parsePattern("dense - window + causal").label).toBe(
      "(dense - window w=112) + causal in time",
    );
    expect(parsePattern("dense & (window + causal)").label).toBe(
      "dense & (window w=112 + causal in time)",
    );
    expect(parsePattern("heads(window3d; divided)").label).toBe(
      "heads(window3d 3x7x7; divided space-time)",
    );
    expect(parsePattern("a+b".replace("a", "dense").replace("b", "causal")).needs).toBe("grid");
    expect(parsePattern("window + dense").needs).toBe("order");
  });

  it("refuse what is wrong, naming it", () => {
    const cases: [string, RegExp][] = [
      ["", /is empty/],
      ["window2d", /names no library pattern "window2d"; known patterns: svitt, dense/],
      ["window3d:3x7", /kernel "3x7", not three integers AxBxC/],
      ["window3d:4x7x7", /each value must be odd/],
      ["window:size=3", /unknown parameter "size" \(its parameters: w\)/],
      ["window:w=3,w=4", /w twice/],
      ["window:w=-3", /gives window's w "", not an integer/],
      ["divided +", /needs a pattern name/],
      ["(divided", /needs "\)"/],
      ["heads(divided; causal", /needs "\)"/],
      ["dense:1", /without a name/],
    ];
    for (const [spec, message] of cases) {
      expect(() => parsePattern(spec, "sparsity.attention.pattern")).toThrow(ConfigError);
      expect(() => parsePattern(spec, "sparsity.attention.pattern")).toThrow(message);
      expect(() => parsePattern(spec, "sparsity.attention.pattern")).toThrow(
        /"sparsity\.attention\.pattern"/,
      );
    }
    expect(libraryEntry("nothing")).toBeUndefined();
  });
});

describe("layer tokens", () => {
  it("are exact before a drop, in the graph's token order", () => {
    const order = Int32Array.from([5, 0, 3, 1, 4, 2]);
    const layer = layerTokens(6, [1, 2, 3], order);
    expect(layer.coordinates).toBe("exact");
    expect(layer.tokens.map((t) => [t.index, t.t, t.y, t.x])).toEqual([
      [0, 0, 1, 2],
      [1, 0, 0, 0],
      [2, 0, 1, 0],
      [3, 0, 0, 1],
      [4, 0, 1, 1],
      [5, 0, 0, 2],
    ]);
  });

  it("are spread after a drop: position i of L takes layer-0 position ⌊i·L0 / L⌋", () => {
    const layer = layerTokens(4, [2, 2, 3], null);
    expect(layer.coordinates).toBe("spread");
    // L0 = 12, L = 4: positions 0, 3, 6, 9 of the raster order.
    expect(layer.tokens.map((t) => [t.t, t.y, t.x])).toEqual([
      [0, 0, 0],
      [0, 1, 0],
      [1, 0, 0],
      [1, 1, 0],
    ]);
    const pattern = parsePattern("divided");
    const ctx = context([2, 2, 3], 2, { localTokens: 4 });
    expect(() => compilePattern(pattern, ctx, { exactCoordinatesOnly: true })).toThrow(
      /reads token coordinates \(t, y, x\), which after a token drop are run-time data/,
    );
    expect(() =>
      compilePattern(parsePattern("window:w=1"), ctx, { exactCoordinatesOnly: true }),
    ).not.toThrow();
  });

  it("are unknown without a grid, where only order patterns compile", () => {
    const ctx = patternContext({ localTokens: 10, blockSize: 4 });
    expect(ctx.tokens.coordinates).toBe("none");
    expect(() => compilePattern(parsePattern("causal"), ctx)).toThrow(/has no clip grid/);
    expect(compilePattern(parsePattern("window:w=2"), ctx).queryBlocks).toBe(3);
  });
});
