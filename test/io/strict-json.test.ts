import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NonIntegerLiteral, parseStrictJson, StrictJsonError } from "../../src/io/strict-json.js";

/** Plain JSON values: what the strict parser returns when no rule of its own applies. */
function plain(value: unknown): unknown {
  if (value instanceof NonIntegerLiteral) return value.value;
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

describe("parseStrictJson", () => {
  it("agrees with JSON.parse on every JSON text without repeated keys", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(plain(parseStrictJson(text))).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it("keeps fraction and exponent literals apart from integer literals", () => {
    const parsed = parseStrictJson("[2, 2.0, 1e3, -0.5, 20]") as unknown[];
    expect(parsed[0]).toBe(2);
    expect(parsed[1]).toBeInstanceOf(NonIntegerLiteral);
    expect((parsed[1] as NonIntegerLiteral).text).toBe("2.0");
    expect((parsed[2] as NonIntegerLiteral).value).toBe(1000);
    expect((parsed[3] as NonIntegerLiteral).value).toBe(-0.5);
    expect(parsed[4]).toBe(20);
  });

  it("refuses a key repeated in one object, at any depth, and names it", () => {
    expect(() => parseStrictJson('{"a":1,"a":2}')).toThrow(/duplicate key "a" at character 7/);
    expect(() => parseStrictJson('{"x":{"b":1,"b":1}}')).toThrow(/duplicate key "b"/);
    expect(parseStrictJson('{"a":{"b":1},"b":{"a":2}}')).toEqual({ a: { b: 1 }, b: { a: 2 } });
  });

  it("makes own properties of Object.prototype's names", () => {
    const parsed = parseStrictJson('{"__proto__":1,"toString":2}') as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(["__proto__", "toString"]);
    expect(Object.getPrototypeOf(parsed)).toBeNull();
  });

  it.each([
    ["{", "unterminated object"],
    ['{"a":1,}', "trailing comma"],
    ["[01]", "leading zero"],
    ["[1.]", "fraction without digits"],
    ['"\\x"', "bad escape"],
    ['"a\nb"', "raw control character"],
    ["{} x", "text after the value"],
    ["NaN", "NaN"],
    ["", "nothing"],
  ])("refuses %j (%s) as JSON.parse does", (text) => {
    expect(() => JSON.parse(text)).toThrow();
    expect(() => parseStrictJson(text)).toThrow(StrictJsonError);
  });

  it("bounds nesting instead of exhausting the stack", () => {
    expect(() => parseStrictJson("[".repeat(100_000))).toThrow(/nested deeper than 64 levels/);
    expect(parseStrictJson(`${"[".repeat(64)}${"]".repeat(64)}`)).toBeDefined();
  });
});
