import { ConfigError } from "../ir/errors.js";

/**
 * Layering a partial config over a full one (a preset): objects merge key by key, every
 * other value (numbers, strings, lists, null) replaces what was there. Keys are read as
 * own properties only, so "__proto__", "toString" or "constructor" in a JSON file are
 * plain unknown keys that the schema then rejects, never inherited members.
 */
export type Json =
  | null
  | boolean
  | number
  | string
  | readonly Json[]
  | { readonly [key: string]: Json };

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function mergeConfig(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch) || !isPlainObject(base)) return patch;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(base)) {
    Object.defineProperty(out, key, {
      value: base[key],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  for (const key of Object.keys(patch)) {
    const merged = Object.hasOwn(base, key) ? mergeConfig(base[key], patch[key]) : patch[key];
    Object.defineProperty(out, key, {
      value: merged,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** The value at a dotted path of own properties, or undefined. */
export function getPath(root: unknown, path: string): unknown {
  let value = root;
  for (const key of path.split(".")) {
    if (!isPlainObject(value) || !Object.hasOwn(value, key)) return undefined;
    value = value[key];
  }
  return value;
}

/**
 * A copy of `root` with `value` at the dotted `path`, creating objects along the way.
 * An ancestor that is null (a switched-off part, e.g. sparsity.attention) is an error
 * naming the flag: setting a field inside a part that is off would be silently ignored.
 */
export function setPath(root: unknown, path: string, value: unknown, flag: string): unknown {
  const keys = path.split(".");
  const set = (node: unknown, depth: number, seen: string): unknown => {
    if (depth === keys.length) return value;
    const key = keys[depth]!;
    const here = seen === "" ? key : `${seen}.${key}`;
    if (node === null) {
      throw new ConfigError(path, `${flag} given but "${seen}" is off (null)`);
    }
    const object = isPlainObject(node) ? node : {};
    const child = Object.hasOwn(object, key) ? object[key] : undefined;
    return mergeConfig(object, { [key]: set(child === undefined ? {} : child, depth + 1, here) });
  };
  return set(root, 0, "");
}
