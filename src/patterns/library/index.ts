import { ConfigError } from "../../ir/errors.js";
import { difference, intersection, type Pattern, perHead, union } from "../language.js";
import { bigbird } from "./bigbird.js";
import { causal } from "./causal.js";
import { dense } from "./dense.js";
import { dilated } from "./dilated.js";
import { divided } from "./divided.js";
import type { LibraryEntry, ParamSpec, ParamValue, ParamValues } from "./entry.js";
import { strided } from "./strided.js";
import { svitt } from "./svitt.js";
import { window } from "./window.js";
import { window3d } from "./window3d.js";

/**
 * The pattern library, and pattern specs: the text form of a pattern that config files,
 * `--pattern`, `sprig pattern show` and `sprig explore` take.
 *
 * Adding a pattern is one file in this folder exporting a LibraryEntry (entry.ts: name,
 * summary, source, parameters, make), and its line in LIBRARY below.
 *
 * Spec grammar (spaces allowed around operators):
 *   spec   := term (op term)*          op: "+" union, "&" intersection, "-" difference,
 *                                      equal precedence, left to right
 *   term   := "(" spec ")" | "heads(" spec (";" spec)* ")" | NAME [":" params]
 *   params := param ("," param)*       param: KEY=VALUE, or VALUE for the first parameter
 *   VALUE  := INT | INTxINTxINT        (per axis t, y, x)
 * e.g. "svitt", "window3d:3x7x7", "window3d:kernel=1x7x7,dilation=1x2x2",
 * "divided + causal:frames=2", "heads(window3d:3x7x7; divided)". heads(...) gives each
 * listed pattern a consecutive group of the attention heads (src/patterns/language.ts).
 */
export const LIBRARY: readonly LibraryEntry[] = [
  svitt,
  dense,
  window,
  window3d,
  divided,
  strided,
  dilated,
  bigbird,
  causal,
];

export type { LibraryEntry, ParamSpec, ParamValue, ParamValues } from "./entry.js";

/** The library entry called `name`, if any. */
export function libraryEntry(name: string): LibraryEntry | undefined {
  return LIBRARY.find((entry) => entry.name === name);
}

/**
 * Defaults that replace an entry's own for one parse, by entry name: the vision spec makes
 * its `local` and `random` the svitt pattern's.
 */
export type PatternDefaults = Readonly<Record<string, ParamValues>>;

/** A pattern from its spec; errors are ConfigErrors of `field` saying where the spec is wrong. */
export function parsePattern(
  text: string,
  field = "pattern",
  overrides: PatternDefaults = {},
): Pattern {
  return new SpecParser(text, field, overrides).parse();
}

/** One entry's spec form with its defaults, e.g. "window3d:kernel=3x7x7,dilation=1x1x1". */
export function entrySyntax(entry: LibraryEntry): string {
  if (entry.params.length === 0) return entry.name;
  return `${entry.name}:${entry.params.map((p) => `${p.name}=${formatValue(p.default)}`).join(",")}`;
}

function formatValue(value: ParamValue): string {
  return typeof value === "number" ? `${value}` : value.join("x");
}

type Operator = "+" | "&" | "-";

class SpecParser {
  private at = 0;

  constructor(
    private readonly text: string,
    private readonly field: string,
    private readonly overrides: PatternDefaults,
  ) {}

  private defaults(entry: LibraryEntry): ParamValues {
    return { ...defaults(entry), ...this.overrides[entry.name] };
  }

  parse(): Pattern {
    if (this.text.trim() === "") this.fail("is empty");
    const pattern = this.spec();
    this.skipSpaces();
    if (this.at < this.text.length) this.fail(`has "${this.text.slice(this.at)}" left over`);
    return pattern;
  }

  private fail(detail: string): never {
    throw new ConfigError(
      this.field,
      `pattern "${this.text}" ${detail}; known patterns: ${LIBRARY.map((e) => e.name).join(", ")} (operators + & -, heads(a; b), see sprig pattern list)`,
    );
  }

  private skipSpaces(): void {
    while (this.text[this.at] === " ") this.at++;
  }

  private peek(): string | undefined {
    this.skipSpaces();
    return this.text[this.at];
  }

  /** Terms joined by operators, left to right; runs of "+" or "&" become one n-ary node. */
  private spec(): Pattern {
    let operator: Operator | null = null;
    let parts = [this.term()];
    for (;;) {
      const next = this.peek();
      if (next !== "+" && next !== "&" && next !== "-") break;
      this.at++;
      const term = this.term();
      if (operator !== null && (next !== operator || next === "-")) {
        parts = [joined(operator, parts)];
      }
      operator = next;
      parts.push(term);
    }
    return operator === null ? parts[0]! : joined(operator, parts);
  }

  private term(): Pattern {
    if (this.peek() === "(") {
      this.at++;
      const inner = this.spec();
      this.expect(")");
      return inner;
    }
    const name = this.name();
    if (name === "heads" && this.peek() === "(") {
      this.at++;
      const list = [this.spec()];
      while (this.peek() === ";") {
        this.at++;
        list.push(this.spec());
      }
      this.expect(")");
      return perHead(list);
    }
    const entry = libraryEntry(name);
    if (entry === undefined) this.fail(`names no library pattern "${name}"`);
    const params = this.text[this.at] === ":" ? this.params(entry) : this.defaults(entry);
    return entry.make(params);
  }

  private expect(char: string): void {
    if (this.peek() !== char) this.fail(`needs "${char}" at position ${this.at + 1}`);
    this.at++;
  }

  private name(): string {
    this.skipSpaces();
    const match = /^[a-z][a-z0-9]*/.exec(this.text.slice(this.at));
    if (match === null) this.fail(`needs a pattern name at position ${this.at + 1}`);
    this.at += match[0].length;
    return match[0];
  }

  private params(entry: LibraryEntry): ParamValues {
    this.at++; // ":"
    const match = /^[a-z0-9=,x]*/.exec(this.text.slice(this.at))!;
    this.at += match[0].length;
    const values: Record<string, ParamValue> = { ...this.defaults(entry) };
    const given = new Set<string>();
    match[0].split(",").forEach((part, i) => {
      const [key, raw] = part.includes("=") ? part.split("=", 2) : [undefined, part];
      const spec =
        key === undefined ? (i === 0 ? entry.params[0] : undefined) : paramNamed(entry, key);
      if (spec === undefined) {
        this.fail(
          key === undefined
            ? `gives "${part}" without a name (only the first parameter may go unnamed)`
            : `gives ${entry.name} an unknown parameter "${key}" (its parameters: ${paramList(entry)})`,
        );
      }
      if (given.has(spec.name)) this.fail(`gives ${entry.name}'s ${spec.name} twice`);
      given.add(spec.name);
      values[spec.name] = this.value(entry, spec, raw ?? "");
    });
    return values;
  }

  private value(entry: LibraryEntry, spec: ParamSpec, raw: string): ParamValue {
    const expected = spec.kind === "int" ? "an integer" : "three integers AxBxC (per axis t, y, x)";
    const shape = spec.kind === "int" ? /^\d+$/ : /^\d+x\d+x\d+$/;
    if (!shape.test(raw)) this.fail(`gives ${entry.name}'s ${spec.name} "${raw}", not ${expected}`);
    const numbers = raw.split("x").map(Number);
    for (const n of numbers) {
      if (!(Number.isSafeInteger(n) && n >= spec.min)) {
        this.fail(`gives ${entry.name}'s ${spec.name} ${raw}: each value must be >= ${spec.min}`);
      }
      if (spec.odd === true && n % 2 === 0) {
        this.fail(`gives ${entry.name}'s ${spec.name} ${raw}: each value must be odd`);
      }
    }
    return spec.kind === "int" ? numbers[0]! : (numbers as [number, number, number]);
  }
}

function joined(operator: Operator, parts: readonly Pattern[]): Pattern {
  if (operator === "+") return union(...parts);
  if (operator === "&") return intersection(...parts);
  return difference(parts[0]!, parts[1]!);
}

function defaults(entry: LibraryEntry): ParamValues {
  return Object.fromEntries(entry.params.map((p) => [p.name, p.default]));
}

function paramNamed(entry: LibraryEntry, name: string): ParamSpec | undefined {
  return entry.params.find((p) => p.name === name);
}

function paramList(entry: LibraryEntry): string {
  return entry.params.length === 0 ? "none" : entry.params.map((p) => p.name).join(", ");
}
