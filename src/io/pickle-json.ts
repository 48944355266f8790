/**
 * Unpickled plain data as JSON, for checkpoint metadata (epoch, global_step, optimizer
 * hyper-parameters, the training config).
 *
 * Conventions (those of conformance/inputs/checkpoints.json, which Python's json module
 * wrote): dicts of any kind become objects with keys as json.dumps spells them (1 -> "1",
 * True -> "true", None -> "null"); lists become arrays; a tuple becomes
 * `{"__tuple__": [...]}` so it stays distinguishable from a list; an omegaconf config
 * becomes its values (see omegaconfToJson).
 *
 * A value that is not plain data (a tensor, storage, global or bytes; a float JSON cannot
 * hold, an int beyond 2^53, a cycle, nesting deeper than MAX_DEPTH or more than MAX_NODES
 * values) converts to `undefined`, never to a partial result.
 */
import { type DictKey, PickleDict, PickleObject, PickleTuple, type PickleValue } from "./pickle.js";

export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** Deeper than any real config; keeps the recursion far from the JS stack limit. */
const MAX_DEPTH = 500;
/** Shared subtrees are expanded, so the output is bounded explicitly. */
const MAX_NODES = 1_000_000;

/** Thrown inside a conversion to abandon it; never escapes this module. */
class NotPlainData extends Error {}

/** `value` as JSON, or undefined when it is not plain data. */
export function toPlainJson(value: PickleValue<unknown>): JsonValue | undefined {
  return attempt((converter) => converter.plain(value, 0));
}

/**
 * An omegaconf DictConfig / ListConfig / AnyNode as the config values it holds: a
 * DictConfig is its `_content` dict (key -> node), a ListConfig its `_content` list, an
 * AnyNode its `_val`; so `config.video_input.num_frames` is found along
 * `_content -> video_input -> _content -> num_frames -> _val`. A `_content` of None (a
 * None config) or a string (omegaconf's "???" for missing, or an interpolation) is kept
 * as is. `_parent` and `_metadata` are not values, so the parent cycle is never followed.
 */
export function omegaconfToJson(value: PickleValue<unknown>): JsonValue | undefined {
  if (!(value instanceof PickleObject)) return undefined;
  return attempt((converter) => converter.plain(value, 0));
}

function attempt(convert: (converter: Converter) => JsonValue): JsonValue | undefined {
  try {
    return convert(new Converter());
  } catch (error) {
    if (error instanceof NotPlainData) return undefined;
    throw error;
  }
}

class Converter {
  private nodesLeft = MAX_NODES;
  private readonly onPath = new Set<object>();

  plain(value: PickleValue<unknown>, depth: number): JsonValue {
    if (--this.nodesLeft < 0 || depth > MAX_DEPTH) throw new NotPlainData();
    if (value === null || typeof value === "boolean" || typeof value === "string") return value;
    if (typeof value === "number") {
      if (!Number.isFinite(value)) throw new NotPlainData();
      return value;
    }
    if (typeof value === "object" && value !== null) return this.container(value, depth);
    throw new NotPlainData();
  }

  private container(value: object, depth: number): JsonValue {
    if (this.onPath.has(value)) throw new NotPlainData();
    this.onPath.add(value);
    try {
      if (Array.isArray(value)) return value.map((item) => this.plain(item, depth + 1));
      if (value instanceof PickleTuple) {
        return { __tuple__: value.items.map((item) => this.plain(item, depth + 1)) };
      }
      if (value instanceof PickleDict) return this.dict(value.items, depth);
      if (value instanceof PickleObject) return this.omegaconf(value, depth);
      throw new NotPlainData();
    } finally {
      this.onPath.delete(value);
    }
  }

  private dict(items: ReadonlyMap<DictKey, PickleValue<unknown>>, depth: number): JsonValue {
    // fromEntries defines own properties, so a key like "__proto__" stays plain data.
    return Object.fromEntries(
      [...items].map(([key, item]) => [String(key), this.plain(item, depth + 1)] as const),
    );
  }

  private omegaconf(node: PickleObject<unknown>, depth: number): JsonValue {
    const state = node.state instanceof PickleDict ? node.state.items : undefined;
    if (state === undefined) throw new NotPlainData();
    switch (node.className) {
      case "omegaconf.nodes.AnyNode":
        if (!state.has("_val")) throw new NotPlainData();
        return this.plain(state.get("_val")!, depth + 1);
      case "omegaconf.dictconfig.DictConfig":
      case "omegaconf.listconfig.ListConfig": {
        const content = state.get("_content");
        if (content === null || typeof content === "string") return content;
        if (node.className === "omegaconf.listconfig.ListConfig" && Array.isArray(content)) {
          return this.plain(content, depth + 1);
        }
        if (node.className === "omegaconf.dictconfig.DictConfig" && content instanceof PickleDict) {
          return this.dict(content.items, depth + 1);
        }
        throw new NotPlainData();
      }
      default:
        // ContainerMetadata / Metadata describe nodes; they hold no config values.
        throw new NotPlainData();
    }
  }
}
