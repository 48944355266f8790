import { ConfigError } from "../ir/errors.js";
import { setPath } from "./merge.js";

/**
 * Command-line flags as data: each names the config field it sets, so a flag and the
 * config file key it stands for are validated by the same schema (the flag's text is
 * parsed strictly first: decimal integers only, no hex, no "1e3" for an integer, no
 * empty strings). The CLI builds its options from these tables and the README's option
 * list is tested against them.
 */
export type FlagKind =
  /** An integer. */
  | "int"
  /** A decimal number. */
  | "number"
  /** Comma-separated integers ("" is the empty list). */
  | "intList"
  /** One of `values`. */
  | "choice"
  /** Present or absent; sets `true`. */
  | "switch";

export interface FlagSpec {
  /** The long option, e.g. "--keep-rate". */
  readonly flag: string;
  /** Placeholder in --help, e.g. "<r>"; none for switches. */
  readonly placeholder?: string;
  /** The config field it sets, as a dotted path in the model's spec. */
  readonly path: string;
  readonly kind: FlagKind;
  readonly values?: readonly string[];
  readonly help: string;
  /**
   * What to put at `enable.path` first when that part is off (null), so the flag switches
   * it on with these defaults (e.g. --cross-keep-rate turns cross-modal pruning on).
   */
  readonly enable?: { readonly path: string; readonly value: unknown };
}

const INTEGER = /^-?\d+$/;
const DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Parses one flag's text strictly; throws ConfigError naming the field and the flag. */
export function parseFlagValue(spec: FlagSpec, text: string | boolean): unknown {
  const fail = (what: string): never => {
    throw new ConfigError(spec.path, `${spec.flag} ${what}, got ${JSON.stringify(text)}`);
  };
  if (spec.kind === "switch") {
    if (text !== true) fail("takes no value");
    return true;
  }
  if (typeof text !== "string") return fail("needs a value");
  switch (spec.kind) {
    case "int": {
      if (!INTEGER.test(text)) fail("must be a decimal integer");
      const value = Number(text);
      if (!Number.isSafeInteger(value)) fail("is out of range");
      return value;
    }
    case "number": {
      if (!DECIMAL.test(text)) fail("must be a decimal number");
      const value = Number(text);
      if (!Number.isFinite(value)) fail("is out of range");
      return value;
    }
    case "intList": {
      if (text.trim() === "") return [];
      return text.split(",").map((part) => {
        const item = part.trim();
        if (!INTEGER.test(item)) fail("must be comma-separated decimal integers");
        return Number(item);
      });
    }
    case "choice": {
      const values = spec.values ?? [];
      if (!values.includes(text)) fail(`must be one of ${values.join(", ")}`);
      return text;
    }
    default:
      return spec.kind satisfies never;
  }
}

/** The same flags with every path under `prefix` (a model part mounted in a larger spec). */
export function mountFlags(flags: readonly FlagSpec[], prefix: string): FlagSpec[] {
  return flags.map((f) => ({
    ...f,
    path: `${prefix}.${f.path}`,
    ...(f.enable ? { enable: { ...f.enable, path: `${prefix}.${f.enable.path}` } } : {}),
  }));
}

/** Applies the flags that were given (by flag name) to a config object. */
export function applyFlags(
  config: unknown,
  flags: readonly FlagSpec[],
  given: Readonly<Record<string, string | boolean | undefined>>,
): unknown {
  let current = config;
  for (const spec of flags) {
    const text = given[spec.flag];
    if (text === undefined || text === false) continue;
    const value = parseFlagValue(spec, text);
    if (spec.enable !== undefined && isNullAt(current, spec.enable.path)) {
      current = setPath(current, spec.enable.path, spec.enable.value, spec.flag);
    }
    current = setPath(current, spec.path, value, spec.flag);
  }
  return current;
}

function isNullAt(root: unknown, path: string): boolean {
  let value = root;
  for (const key of path.split(".")) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) return false;
    value = (value as Record<string, unknown>)[key];
  }
  return value === null;
}
