/**
 * Seeded generators of ragged block layouts with partial blocks, shared by the property
 * tests and the native kernel's test:
 * - token predicates (random density, bands, coarse cells, empty), compiled to layouts by
 *   src/patterns/predicate.ts, each with an independent statement of which pairs it reads;
 * - random CSR layouts built entry by entry: rows of any length (empty ones too), blocks in
 *   any order, repeats where padding "reference" allows them, random token masks.
 */
import type { BlockLayout } from "../../src/ir/pattern.js";
import { permutation, rng } from "../models/support.js";

/** Whether local query q of head h reads local key k. */
export type Reads = (head: number, query: number, key: number) => boolean;

export type PredicateKind = "random" | "band" | "cells" | "empty";

export const PREDICATE_KINDS: readonly PredicateKind[] = ["random", "band", "cells", "empty"];

/** A 32-bit hash of integers (for seeded random predicates that need no table). */
function hash(...values: number[]): number {
  let h = 0x811c9dc5;
  for (const v of values) {
    h ^= v;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= h >>> 13;
  }
  return (Math.imul(h, 0x5bd1e995) >>> 0) / 4294967296;
}

/**
 * A seeded predicate over L local tokens, head-dependent when `perHead`:
 * - random: each pair read with a density drawn per head from [0.05, 0.95];
 * - band: |q - k| <= w with w drawn per head from [0, L / 3];
 * - cells: pairs of coarse cells of c tokens (c drawn from 1 .. 9, which may or may not
 *   divide the block size) read with density 0.5, so full and partial blocks both occur;
 * - empty: no pair (queries read the global tokens only).
 */
export function randomPredicate(
  kind: PredicateKind,
  local: number,
  seed: number,
  perHead: boolean,
): Reads {
  const next = rng(seed);
  const perHeadValue = (draw: () => number): ((h: number) => number) => {
    const values = Array.from({ length: 8 }, draw);
    return (h) => values[perHead ? h % values.length : 0]!;
  };
  switch (kind) {
    case "random": {
      const density = perHeadValue(() => 0.05 + 0.9 * next());
      return (h, q, k) => hash(seed, perHead ? h : 0, q, k) < density(h);
    }
    case "band": {
      const width = perHeadValue(() => Math.floor(next() * (local / 3 + 1)));
      return (h, q, k) => Math.abs(q - k) <= width(h);
    }
    case "cells": {
      const cell = 1 + Math.floor(next() * 9);
      return (h, q, k) =>
        hash(seed, perHead ? h : 0, Math.floor(q / cell), Math.floor(k / cell)) < 0.5;
    }
    case "empty":
      return () => false;
    default:
      return kind satisfies never;
  }
}

export interface RandomRagged {
  readonly layout: BlockLayout;
  /** The pairs the layout reads, stated from the generator's own choices. */
  readonly reads: Reads;
}

/**
 * A random ragged layout over `blocks` blocks of bs for L local tokens: per layout head and
 * query block a row of 0 .. maxWidth entries (distinct blocks, or drawn with replacement when
 * `repeats`), in random order; each entry full or, with probability 1/2, partial with a
 * random token mask over the real pairs (at least one set, none at padded positions).
 */
export function randomRaggedLayout(spec: {
  readonly blocks: number;
  readonly blockSize: number;
  readonly local: number;
  readonly layoutHeads: number;
  readonly maxWidth: number;
  readonly repeats: boolean;
  readonly seed: number;
}): RandomRagged {
  const { blocks, blockSize: bs, local, layoutHeads, maxWidth, repeats, seed } = spec;
  const next = rng(seed);
  const words = Math.ceil(bs / 32);
  const rowStart = [0];
  const entries: number[] = [];
  const entryMask: number[] = [];
  const masks: number[] = [];
  // For `reads`: per (head, query block), the key blocks and their masks (null = full).
  const rows: { kb: number; bits: Uint32Array | null }[][] = [];
  for (let h = 0; h < layoutHeads; h++) {
    for (let m = 0; m < blocks; m++) {
      const length = Math.floor(next() * (Math.min(maxWidth, repeats ? maxWidth : blocks) + 1));
      const chosen = repeats
        ? Array.from({ length }, () => Math.floor(next() * blocks))
        : permutation(blocks, next).slice(0, length);
      const row: { kb: number; bits: Uint32Array | null }[] = [];
      for (const kb of chosen) {
        entries.push(kb);
        if (next() < 0.5) {
          entryMask.push(-1);
          row.push({ kb, bits: null });
          continue;
        }
        const bits = randomMask(
          next,
          bs,
          words,
          Math.min(bs, local - m * bs),
          Math.min(bs, local - kb * bs),
        );
        entryMask.push(masks.length / (bs * words));
        masks.push(...bits);
        row.push({ kb, bits });
      }
      rows.push(row);
      rowStart.push(entries.length);
    }
  }
  const widest = Math.max(0, ...rows.map((r) => r.length));
  const layout: BlockLayout = {
    heads: layoutHeads,
    queryBlocks: blocks,
    blocksPerRow: widest,
    blocks: Int32Array.from(entries),
    rowStart: Int32Array.from(rowStart),
    entryMask: Int32Array.from(entryMask),
    masks: Uint32Array.from(masks),
  };
  const reads: Reads = (head, q, k) => {
    const row = rows[(layoutHeads === 1 ? 0 : head) * blocks + Math.floor(q / bs)]!;
    const r = q % bs;
    const t = k % bs;
    return row.some(
      (e) =>
        e.kb === Math.floor(k / bs) &&
        (e.bits === null || ((e.bits[r * words + (t >>> 5)]! >>> (t & 31)) & 1) === 1),
    );
  };
  return { layout, reads };
}

/** A random bs x bs token mask over realRows x realKeys pairs: at least one bit set. */
function randomMask(
  next: () => number,
  bs: number,
  words: number,
  realRows: number,
  realKeys: number,
): Uint32Array {
  const bits = new Uint32Array(bs * words);
  const density = 0.1 + 0.8 * next();
  const set = (r: number, t: number) => {
    bits[r * words + (t >>> 5)] = (bits[r * words + (t >>> 5)]! | (1 << (t & 31))) >>> 0;
  };
  for (let r = 0; r < realRows; r++)
    for (let t = 0; t < realKeys; t++) if (next() < density) set(r, t);
  if (bits.every((w) => w === 0)) set(Math.floor(next() * realRows), Math.floor(next() * realKeys));
  return bits;
}
