import { z } from "zod";
import { ConfigError } from "../ir/errors.js";

/**
 * The building blocks of every config schema (models, CLI flags, config files, the public
 * API and the browser page all validate through these). zod is the validator: well kept,
 * no dependencies, strict objects that reject unknown keys by own-property checks, and no
 * coercion unless asked for, so a string never passes for a number, null never becomes a
 * default and "no" never switches a feature on.
 *
 * Each leaf carries one message saying what is allowed ("must be an integer in [1, 4096]");
 * parseConfig turns the first failure into a ConfigError naming the field path, the value
 * that was given and that message.
 */

/** An integer in [min, max]. */
export function int(min: number, max: number): z.ZodType<number> {
  return z.custom<number>(
    (v) => typeof v === "number" && Number.isInteger(v) && v >= min && v <= max,
    { message: `must be an integer in [${min}, ${max}]` },
  );
}

/** A finite number in an interval; `open` ends are excluded. */
export function number(
  min: number,
  max: number,
  open: { readonly min?: boolean; readonly max?: boolean } = {},
): z.ZodType<number> {
  const lo = open.min ? "(" : "[";
  const hi = open.max ? ")" : "]";
  return z.custom<number>(
    (v) =>
      typeof v === "number" &&
      Number.isFinite(v) &&
      (open.min ? v > min : v >= min) &&
      (open.max ? v < max : v <= max),
    { message: `must be a number in ${lo}${min}, ${max}${hi}` },
  );
}

/** A token keep rate: (0, 1]. */
export const keepRate = (): z.ZodType<number> => number(0, 1, { min: true });

export function bool(): z.ZodType<boolean> {
  return z.custom<boolean>((v) => typeof v === "boolean", { message: "must be true or false" });
}

/** One of a fixed list of strings. */
export function oneOf<const T extends readonly string[]>(values: T): z.ZodType<T[number]> {
  return z.custom<T[number]>((v) => typeof v === "string" && values.includes(v), {
    message: `must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}`,
  });
}

/** A list of integers in [min, max]. */
export function intList(min: number, max: number): z.ZodType<number[]> {
  return z.custom<number[]>(
    (v) =>
      Array.isArray(v) &&
      v.every((x) => typeof x === "number" && Number.isInteger(x) && x >= min && x <= max),
    { message: `must be a list of integers in [${min}, ${max}]` },
  );
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/**
 * The given value as a message shows it, its JSON type spelled out where the type is the
 * problem: `the string "8"` (not a bare "8", which reads as a number out of range),
 * `an object`, `a list`; numbers, booleans and null as they are.
 */
function shown(value: unknown): string {
  if (value === undefined) return "nothing";
  const cut = (text: string) => (text.length > 80 ? `${text.slice(0, 77)}...` : text);
  if (typeof value === "string") return `the string ${cut(JSON.stringify(value))}`;
  if (Array.isArray(value)) return `the list ${cut(JSON.stringify(value))}`;
  if (typeof value === "object" && value !== null) return `an object ${cut(JSON.stringify(value))}`;
  return cut(JSON.stringify(value) ?? String(value));
}

/**
 * Parses `value` with `schema`; on failure throws a ConfigError for the first issue:
 * the field path under `prefix`, what was given and what is allowed.
 */
export function parseConfig<T>(schema: z.ZodType<T>, value: unknown, prefix = ""): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const join = (path: readonly PropertyKey[]) =>
    [prefix, ...path.map(String)].filter((p) => p !== "").join(".") || "(config)";
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0]!;
    const parent = valueAt(value, issue.path);
    const known =
      typeof parent === "object" && parent !== null ? knownKeys(schema, issue.path) : [];
    throw new ConfigError(
      join([...issue.path, key]),
      `unknown field${known.length > 0 ? ` (known: ${known.join(", ")})` : ""}`,
    );
  }
  const given = valueAt(value, issue.path);
  const what =
    issue.code === "invalid_type" && issue.expected === "object"
      ? "must be an object"
      : issue.message;
  throw new ConfigError(join(issue.path), `${what}, got ${shown(given)}`);
}

/** The keys a strict object schema allows at `path`, for error messages. */
function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.ZodType | undefined = schema;
  for (const key of path) {
    current = unwrap(current);
    if (!(current instanceof z.ZodObject)) return [];
    current = (current.shape as Record<string, z.ZodType>)[String(key)];
  }
  current = unwrap(current);
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let current = schema;
  while (current instanceof z.ZodNullable || current instanceof z.ZodOptional) {
    current = current.unwrap() as z.ZodType;
  }
  return current;
}

/** Runs `check`, naming the fields of its ConfigErrors under `prefix` (a part of a larger spec). */
export function underField<T>(prefix: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof ConfigError)
      throw new ConfigError(`${prefix}.${error.field}`, error.detail);
    throw error;
  }
}
