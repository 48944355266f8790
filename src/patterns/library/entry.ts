import { ConfigError } from "../../ir/errors.js";
import type { BlockVerdict, Pattern, TokenBox } from "../language.js";

/**
 * What a library pattern is: a name, where it comes from, its parameters and how to make
 * the pattern from them. One file per pattern in this folder exports one LibraryEntry;
 * src/patterns/library/index.ts lists them (a test checks that every file is listed).
 */
export interface LibraryEntry {
  /** The name in pattern specs ("window3d:3x7x7"): lower-case letters and digits. */
  readonly name: string;
  /** One line: what it reads. */
  readonly summary: string;
  /** Where it comes from (paper, library). */
  readonly source: string;
  /** Parameters, the first one also positional ("window3d:3x7x7" is kernel=3x7x7). */
  readonly params: readonly ParamSpec[];
  /**
   * Specs of this pattern for clips of 2-3 frames of 3-6 x 3-6 patches, with parameters
   * that read neither everything nor nothing there: the test suite runs each through the
   * mask-equivalence property on every backend (test/properties/mask-equivalence.test.ts),
   * so a new pattern is tested from its own file.
   */
  readonly smallSpecs: readonly string[];
  readonly make: (params: ParamValues) => Pattern;
}

export interface ParamSpec {
  readonly name: string;
  /** An integer, or three integers written AxBxC (per axis t, y, x). */
  readonly kind: "int" | "triple";
  readonly default: number | readonly [number, number, number];
  /** Smallest allowed value (of each integer). */
  readonly min: number;
  /** Whether the integers must be odd (centred windows). */
  readonly odd?: boolean;
  readonly help: string;
}

export type ParamValue = number | readonly [number, number, number];
export type ParamValues = Readonly<Record<string, ParamValue>>;

/** The integer parameter `name` (the parser has checked kinds and ranges). */
export function intParam(params: ParamValues, name: string): number {
  const value = params[name];
  if (typeof value !== "number") throw new ConfigError("pattern", `missing parameter ${name}`);
  return value;
}

/** The three-integer parameter `name`. */
export function tripleParam(params: ParamValues, name: string): readonly [number, number, number] {
  const value = params[name];
  if (typeof value === "number" || value === undefined) {
    throw new ConfigError("pattern", `missing parameter ${name}`);
  }
  return value;
}

// ---- bounds over token boxes ----------------------------------------------------------------

/** Smallest and largest |a - b| for a in [a0, a1], b in [b0, b1]. */
export function distanceRange(
  a: readonly [number, number],
  b: readonly [number, number],
): [number, number] {
  const least = Math.max(0, a[0] - b[1], b[0] - a[1]);
  const most = Math.max(a[1] - b[0], b[1] - a[0]);
  return [least, most];
}

/** The verdict of "|q.index - k.index| <= w" over two boxes. */
export function bandVerdict(q: TokenBox, k: TokenBox, w: number): BlockVerdict {
  const [least, most] = distanceRange(q.index, k.index);
  if (least > w) return "none";
  return most <= w ? "all" : "some";
}

/** Whether two ranges share no value. */
export function disjoint(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[1] < b[0] || b[1] < a[0];
}

/** Whether both ranges are the same single value. */
export function sameSingle(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] === a[1] && b[0] === b[1] && a[0] === b[0];
}
