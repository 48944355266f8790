/**
 * The SViTT layout generator (src/patterns/layouts.ts), in particular saturated rows: more
 * random blocks than non-local blocks (M - local < random <= M), which the authors' topk
 * fills with local blocks a second time. Expected rows are worked out by hand from the
 * reference's rule (conformance README, behaviour 4): the random part is every non-local
 * block plus random - (M - local) local blocks (for local > 1: the smallest local block
 * indices, sprig's documented choice), sorted ascending; the row is the local blocks in
 * roll order (m + r) mod M, r = -local/2 .. local/2, then the random part.
 */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/ir/errors.js";
import type { BlockLayout, PaddingMode } from "../../src/ir/pattern.js";
import { customLayout, type SvittLayoutSpec, svittLayout } from "../../src/patterns/layouts.js";

function rows(layout: BlockLayout, head = 0): number[][] {
  const out: number[][] = [];
  for (let m = 0; m < layout.queryBlocks; m++) {
    const start = (head * layout.queryBlocks + m) * layout.blocksPerRow;
    out.push(Array.from(layout.blocks.subarray(start, start + layout.blocksPerRow)));
  }
  return out;
}

function configError(body: () => unknown): ConfigError {
  try {
    body();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

/** M = ceil(localTokens / 8) blocks of 8, seeded, shared by the heads. */
function spec(
  blocks: number,
  local: number,
  random: number,
  padding: PaddingMode,
  extra: Partial<SvittLayoutSpec> = {},
): SvittLayoutSpec {
  return {
    // One token short of whole blocks: the last block is padded, which must not matter.
    localTokens: blocks * 8 - 1,
    blockSize: 8,
    local,
    random,
    heads: 1,
    randomBlocks: { seed: 5, stream: "test" },
    padding,
    ...extra,
  };
}

describe("svittLayout: saturated rows under padding reference", () => {
  it("local 1, M = 3, random 3: row m is [m, 0, 1, 2] (block m read twice)", () => {
    // non-local blocks of m: the other two; the one extra block is m itself; sorted.
    const layout = svittLayout(spec(3, 1, 3, "reference"), "layer 10");
    expect([layout.heads, layout.queryBlocks, layout.blocksPerRow]).toEqual([1, 3, 4]);
    expect(rows(layout)).toEqual([
      [0, 0, 1, 2],
      [1, 0, 1, 2],
      [2, 0, 1, 2],
    ]);
  });

  it("local 3, M = 5, random 3: the smallest local block is read again", () => {
    // m = 0: locals (roll order) [4, 0, 1], non-local [2, 3], extra min{0, 1, 4} = 0
    // m = 1: locals [0, 1, 2], non-local [3, 4], extra 0
    // m = 2: locals [1, 2, 3], non-local [0, 4], extra 1
    // m = 3: locals [2, 3, 4], non-local [0, 1], extra 2
    // m = 4: locals [3, 4, 0], non-local [1, 2], extra 0
    const layout = svittLayout(spec(5, 3, 3, "reference"), "layer 4");
    expect(rows(layout)).toEqual([
      [4, 0, 1, 0, 2, 3],
      [0, 1, 2, 0, 3, 4],
      [1, 2, 3, 0, 1, 4],
      [2, 3, 4, 0, 1, 2],
      [3, 4, 0, 0, 1, 2],
    ]);
  });

  it("local 3, M = 5, random 4 and 5: two, then all three local blocks again", () => {
    // m = 0, random 4: non-local [2, 3] + the two smallest locals [0, 1] -> [0, 1, 2, 3]
    // m = 3, random 4: non-local [0, 1] + locals [2, 3] -> [0, 1, 2, 3]
    const four = rows(svittLayout(spec(5, 3, 4, "reference"), "layer 4"));
    expect(four[0]).toEqual([4, 0, 1, 0, 1, 2, 3]);
    expect(four[3]).toEqual([2, 3, 4, 0, 1, 2, 3]);
    // random 5 = M: every block, the three local ones twice
    const five = rows(svittLayout(spec(5, 3, 5, "reference"), "layer 4"));
    expect(five[2]).toEqual([1, 2, 3, 0, 1, 2, 3, 4]);
  });

  it("gives every head the same saturated rows (nothing is drawn)", () => {
    const layout = svittLayout(spec(3, 1, 3, "reference", { heads: 2 }), "layer 10");
    expect(layout.heads).toBe(2);
    expect(rows(layout, 1)).toEqual(rows(layout, 0));
  });

  it("leaves the ordinary case to the seeded draw (distinct non-local blocks)", () => {
    // random 2 of the 3 non-local blocks of M = 4: a draw, never a local block
    const layout = svittLayout(spec(4, 1, 2, "reference"), "layer 0");
    rows(layout).forEach((row, m) => {
      expect(row[0]).toBe(m);
      expect(row.slice(1)).not.toContain(m);
      expect(new Set(row).size).toBe(3);
    });
  });

  it("takes explicit saturated rows, and checks them against what the topk can return", () => {
    const explicit = (randomBlocks: number[][], local = 1, blocks = 3) =>
      svittLayout(
        spec(blocks, local, randomBlocks[0]!.length, "reference", {
          randomBlocks: { explicit: randomBlocks },
        }),
        "layer 11",
      );
    const ok = explicit([
      [0, 1, 2],
      [0, 1, 2],
      [0, 1, 2],
    ]);
    expect(rows(ok)[1]).toEqual([1, 0, 1, 2]);
    // a random part repeating a block: topk returns distinct indices
    expect(
      configError(() =>
        explicit([
          [0, 1, 1],
          [0, 1, 2],
          [0, 1, 2],
        ]),
      ).message,
    ).toMatch(/layer 11: row 0 repeats a random block in \[0, 1, 1\]/);
    expect(
      configError(() =>
        explicit([
          [0, 1, 2],
          [0, 1, 7],
          [0, 1, 2],
        ]),
      ).message,
    ).toMatch(/layer 11: row 1 reads key block 7, outside \[0, 3\)/);
    // M = 5, local 3, random 3: rows must hold both non-local blocks
    const error = configError(() =>
      explicit(
        [
          [0, 1, 2],
          [0, 3, 4],
          [0, 1, 4],
          [0, 1, 2],
          [0, 1, 2],
        ],
        3,
        5,
      ),
    );
    expect(error.field).toBe("sparsity.attention.randomBlocks");
    expect(error.message).toMatch(/layer 11: row 0 omits non-local block 3/);
  });

  it("still rejects explicit local blocks drawn at random in an ordinary row", () => {
    const error = configError(() =>
      svittLayout(
        spec(4, 1, 2, "reference", {
          randomBlocks: {
            explicit: [
              [1, 2],
              [1, 3],
              [0, 1],
              [0, 1],
            ],
          },
        }),
        "layer 0",
      ),
    );
    expect(error.message).toMatch(/layer 0: row 1 draws local block 1 at random/);
  });
});

describe("svittLayout: limits", () => {
  it('rejects saturated rows under padding "masked", naming layer, M, local and random', () => {
    const error = configError(() => svittLayout(spec(3, 1, 3, "masked"), "layer 10"));
    expect(error.field).toBe("sparsity.attention.random");
    expect(error.message).toContain("layer 10");
    expect(error.message).toContain("3 random blocks exceed the 2 non-local blocks");
    expect(error.message).toContain("M = 3 blocks of 8, local 1");
    expect(error.message).toContain('allowed 0..2 under padding "masked"');
  });

  for (const padding of ["reference", "masked"] as const) {
    it(`rejects random > M under padding "${padding}"`, () => {
      const error = configError(() => svittLayout(spec(3, 1, 4, padding), "layer 7"));
      expect(error.field).toBe("sparsity.attention.random");
      expect(error.message).toContain("layer 7");
      expect(error.message).toContain("4 random blocks exceed the 3 key blocks");
      expect(error.message).toContain("M = 3 blocks of 8, local 1");
      expect(error.message).toContain(
        `allowed 0..${padding === "reference" ? 3 : 2} under padding "${padding}"`,
      );
    });
  }
});

describe("customLayout", () => {
  const repeated = [
    [0, 0, 1],
    [1, 0, 1],
  ];
  it('admits a repeated block only for padding "reference"', () => {
    expect(customLayout(repeated, 2, "reference").blocksPerRow).toBe(3);
    const error = configError(() => customLayout(repeated, 2));
    expect(error.message).toContain("blocksPerRow 3 exceeds the 2 key blocks");
    expect(error.message).toContain("query block 0 reads key block 0 more than once");
    expect(error.message).toContain('not "masked"');
  });

  it("gives a ragged layout for rows of different lengths, an empty one included", () => {
    const layout = customLayout([[0, 2], [], [2, 1, 0]], 4);
    expect(layout.blocksPerRow).toBe(3);
    expect(Array.from(layout.rowStart!)).toEqual([0, 2, 2, 5]);
    expect(Array.from(layout.blocks)).toEqual([0, 2, 2, 1, 0]);
    expect(customLayout([[1], [0]], 1).rowStart).toBeUndefined();
    expect(() => customLayout([[0, 3], [1]], 1)).toThrow(
      /query block 0 reads key block 3, outside \[0, 2\)/,
    );
  });
});
