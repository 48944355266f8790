/**
 * A JSON parser for headers of untrusted files (safetensors), stricter than JSON.parse in
 * the two ways those headers need:
 *
 *   - a key that appears twice in one object is an error (JSON.parse keeps the last one
 *     silently, so a second entry for a tensor name would hide the first);
 *   - a number written with a fraction or an exponent ("2.0", "1e3") is kept apart from an
 *     integer literal ("2"): it comes back as a NonIntegerLiteral, never as a number, so a
 *     field that needs an integer can refuse it even when its value happens to be whole.
 *
 * Everything else is RFC 8259 JSON: objects, arrays, strings with the standard escapes
 * (a lone surrogate escape is kept, as JSON.parse keeps it), true, false and null.
 * Objects are built with own properties only (Object.defineProperty on a null-prototype
 * object), so "__proto__" is a key like any other. Nesting is limited to `maxDepth`
 * levels, so a header of a million "[" fails with a message instead of exhausting the
 * stack. Errors are StrictJsonError with the character offset.
 */

export class StrictJsonError extends Error {
  override readonly name = "StrictJsonError";
  constructor(
    readonly offset: number,
    detail: string,
  ) {
    super(`${detail} at character ${offset}`);
  }
}

/** A number literal with a fraction or an exponent: its text and its value. */
export class NonIntegerLiteral {
  constructor(
    readonly text: string,
    readonly value: number,
  ) {}
  toJSON(): string {
    return this.text;
  }
}

export type StrictJson =
  | null
  | boolean
  | number
  | string
  | NonIntegerLiteral
  | StrictJson[]
  | { [key: string]: StrictJson };

const WHITESPACE = new Set([" ", "\t", "\n", "\r"]);
const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};
const LITERALS: readonly (readonly [string, boolean | null])[] = [
  ["true", true],
  ["false", false],
  ["null", null],
];
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;

export function parseStrictJson(text: string, maxDepth = 64): StrictJson {
  let at = 0;
  const fail = (detail: string): never => {
    throw new StrictJsonError(at, detail);
  };
  const skipWhitespace = () => {
    while (at < text.length && WHITESPACE.has(text[at]!)) at += 1;
  };
  const expectText = (word: string) => {
    if (text.startsWith(word, at)) at += word.length;
    else fail(`unexpected ${describeAt(text, at)}`);
  };

  const parseString = (): string => {
    // at is on the opening quote
    at += 1;
    let out = "";
    let runStart = at;
    while (true) {
      if (at >= text.length) fail("unterminated string");
      const c = text.charCodeAt(at);
      if (c === 0x22) break;
      if (c < 0x20) fail("control character in a string");
      if (c !== 0x5c) {
        at += 1;
        continue;
      }
      out += text.slice(runStart, at);
      const escaped = text[at + 1];
      if (escaped === "u") {
        const hex = text.slice(at + 2, at + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
        out += String.fromCharCode(Number.parseInt(hex, 16));
        at += 6;
      } else if (escaped !== undefined && Object.hasOwn(ESCAPES, escaped)) {
        out += ESCAPES[escaped];
        at += 2;
      } else {
        fail("bad escape in a string");
      }
      runStart = at;
    }
    out += text.slice(runStart, at);
    at += 1;
    return out;
  };

  const parseNumber = (): number | NonIntegerLiteral => {
    NUMBER.lastIndex = at;
    const match = NUMBER.exec(text);
    if (match === null) return fail(`unexpected ${describeAt(text, at)}`);
    at += match[0].length;
    const value = Number(match[0]);
    return match[1] !== undefined || match[2] !== undefined
      ? new NonIntegerLiteral(match[0], value)
      : value;
  };

  const parseValue = (depth: number): StrictJson => {
    skipWhitespace();
    const c = text[at];
    if (c === "{" || c === "[") {
      if (depth >= maxDepth) fail(`nested deeper than ${maxDepth} levels`);
      return c === "{" ? parseObject(depth + 1) : parseArray(depth + 1);
    }
    if (c === '"') return parseString();
    for (const [word, literal] of LITERALS) {
      if (c === word[0]) {
        expectText(word);
        return literal;
      }
    }
    return parseNumber();
  };

  const parseArray = (depth: number): StrictJson[] => {
    at += 1;
    const items: StrictJson[] = [];
    skipWhitespace();
    if (text[at] === "]") {
      at += 1;
      return items;
    }
    while (true) {
      items.push(parseValue(depth));
      skipWhitespace();
      if (text[at] === ",") at += 1;
      else if (text[at] === "]") {
        at += 1;
        return items;
      } else fail(`expected "," or "]", found ${describeAt(text, at)}`);
    }
  };

  const parseObject = (depth: number): { [key: string]: StrictJson } => {
    at += 1;
    const object = Object.create(null) as { [key: string]: StrictJson };
    skipWhitespace();
    if (text[at] === "}") {
      at += 1;
      return object;
    }
    while (true) {
      skipWhitespace();
      if (text[at] !== '"') fail(`expected a key, found ${describeAt(text, at)}`);
      const keyAt = at;
      const key = parseString();
      if (Object.hasOwn(object, key)) {
        at = keyAt;
        fail(`duplicate key ${JSON.stringify(key)}`);
      }
      skipWhitespace();
      if (text[at] !== ":") fail(`expected ":", found ${describeAt(text, at)}`);
      at += 1;
      Object.defineProperty(object, key, {
        value: parseValue(depth),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      skipWhitespace();
      if (text[at] === ",") at += 1;
      else if (text[at] === "}") {
        at += 1;
        return object;
      } else fail(`expected "," or "}", found ${describeAt(text, at)}`);
    }
  };

  const value = parseValue(0);
  skipWhitespace();
  if (at < text.length) fail(`unexpected ${describeAt(text, at)} after the value`);
  return value;
}

function describeAt(text: string, at: number): string {
  if (at >= text.length) return "end of text";
  return JSON.stringify(text.slice(at, at + 8));
}
