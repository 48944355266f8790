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
  /** Any non-empty text; the field's schema and checks validate it (e.g. a pattern spec). */
  | "text"
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
    case "text":
      if (text.trim() === "") fail("must not be empty");
      return text;
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

/**
 * A command's own integer option (--reps, --threads, --k, ...), parsed as strictly as the
 * model flags: decimal digits only, within [min, max]; the message states that range.
 * `field` is the name the error reports; undefined text gives `fallback`.
 */
export function parseIntOption(
  flag: string,
  field: string,
  text: string | undefined,
  range: { readonly min: number; readonly max: number },
  fallback: number,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!INTEGER.test(text) || !(value >= range.min && value <= range.max)) {
    throw new ConfigError(
      field,
      `${flag} must be a decimal integer in [${range.min}, ${range.max}], got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

const BYTE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 2 ** 10,
  kb: 1e3,
  kib: 2 ** 10,
  m: 2 ** 20,
  mb: 1e6,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 1e9,
  gib: 2 ** 30,
  t: 2 ** 40,
  tb: 1e12,
  tib: 2 ** 40,
};
const BYTE_SIZE = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/;

/**
 * A memory size such as "8GiB", "512MiB", "2G" (binary: K, M, G, T are powers of 1024, as
 * KiB, MiB, ...), "16GB" (decimal) or a plain byte count; at least 1 MiB, since no model
 * compiles in less. Throws ConfigError naming `field`.
 */
export function parseByteSize(flag: string, field: string, text: string): number {
  const match = BYTE_SIZE.exec(text.trim());
  const unitName = match === null ? "" : match[2]!.toLowerCase();
  const unit =
    match !== null && Object.hasOwn(BYTE_UNITS, unitName) ? BYTE_UNITS[unitName] : undefined;
  const bytes = match === null || unit === undefined ? Number.NaN : Number(match[1]) * unit;
  if (!(Number.isFinite(bytes) && bytes >= 2 ** 20 && bytes <= 2 ** 60)) {
    throw new ConfigError(
      field,
      `${flag} must be a size from 1MiB to 1EiB such as 8GiB, 512MiB or 16GB, got ${JSON.stringify(text)}`,
    );
  }
  return Math.floor(bytes);
}
