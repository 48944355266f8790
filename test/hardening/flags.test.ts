/**
 * Item 1 of the hardening issue: the config schema and flag parsing say exactly what is
 * wrong. Types are named where the type is the problem, own-property names are unknown
 * fields, null never becomes a default, a boolean is never a string, numeric flags are
 * decimal, and each command's own options state the range they allow.
 */
import { describe, expect, it } from "vitest";
import { parseFlagValue, parseIntOption } from "../../src/config/flags.js";
import { mergeConfig } from "../../src/config/merge.js";
import { parseConfig } from "../../src/config/schema.js";
import { MODELS } from "../../src/models/index.js";

const vision = MODELS.vision;
const preset = vision.preset({ frames: 8, variant: "svitt" });
const withFile = (file: string) => () =>
  vision.check(parseConfig(vision.schema, mergeConfig(preset, JSON.parse(file))));

describe("config files", () => {
  it("names the JSON type when a string stands for a number or a boolean", () => {
    expect(withFile('{"frames": "8"}')).toThrow(
      'config field "frames": must be an integer in [1, 4096], got the string "8"',
    );
    expect(withFile('{"sparsity": {"attention": {"perHead": "no"}}}')).toThrow(
      'config field "sparsity.attention.perHead": must be true or false, got the string "no"',
    );
  });

  it("reports a number out of range as the number", () => {
    expect(withFile('{"sparsity": {"attention": {"seed": 4294967296}}}')).toThrow(
      'config field "sparsity.attention.seed": must be an integer in [0, 4294967295], got 4294967296',
    );
  });

  it("never takes null for a default where a part cannot be off", () => {
    expect(withFile('{"model": null}')).toThrow(
      'config field "model": must be an object, got null',
    );
    expect(withFile('{"sparsity": {"tokens": {"dropAfter": null}}}')).toThrow(
      /"sparsity.tokens.dropAfter": must be a list of integers in \[0, 999\], got null/,
    );
  });

  it.each(["toString", "__proto__", "constructor", "valueOf", "hasOwnProperty"])(
    "takes %s for an unknown field at every level",
    (key) => {
      expect(withFile(`{"${key}": 1}`)).toThrow(`config field "${key}": unknown field`);
      expect(withFile(`{"sparsity": {"attention": {"${key}": 1}}}`)).toThrow(
        `config field "sparsity.attention.${key}": unknown field`,
      );
    },
  );
});

describe("flags", () => {
  const seed = vision.flags.find((f) => f.flag === "--seed")!;
  it.each(["0x10", "1e3", "1.5", "", " 3", "+3"])("an integer flag refuses %j", (text) => {
    expect(() => parseFlagValue(seed, text)).toThrow(
      `config field "sparsity.attention.seed": --seed must be a decimal integer, got ${JSON.stringify(text)}`,
    );
  });

  it("each command option states the range it allows, its lower bound included", () => {
    const warmup = { min: 0, max: 100_000 };
    expect(parseIntOption("--warmup", "warmup", "0", warmup, 1)).toBe(0);
    expect(parseIntOption("--warmup", "warmup", undefined, warmup, 1)).toBe(1);
    expect(() => parseIntOption("--warmup", "warmup", "-1", warmup, 1)).toThrow(
      'config field "warmup": --warmup must be a decimal integer in [0, 100000], got "-1"',
    );
    expect(() => parseIntOption("--reps", "reps", "0x5", { min: 1, max: 9 }, 1)).toThrow(
      /--reps must be a decimal integer in \[1, 9\], got "0x5"/,
    );
  });
});
