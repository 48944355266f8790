import { readTextFile } from "../io/files.js";
import { ConfigError, SprigError } from "../ir/errors.js";

/**
 * Captions and ground truth for retrieval.
 *
 * A captions file is either plain text, one caption per line (blank lines are skipped; ids
 * are the 0-based caption numbers), or JSON: a list of strings, or a list of objects
 * `{"text": "...", "id"?: "...", "videos"?: "name" | ["name", ...]}` where `videos` names
 * the videos the caption describes (its ground truth). A ground-truth file is JSON:
 * `{"pairs": [["video", "caption"], ...]}` (or just the list of pairs), naming videos by
 * id (file name without extension, or 0-based number) and captions by id.
 */
export interface Caption {
  readonly id: string;
  readonly text: string;
}

export interface CaptionSet {
  readonly source: string;
  readonly captions: readonly Caption[];
  /** Ground-truth (video name, caption id) pairs the file itself gives, if any. */
  readonly pairs: readonly (readonly [string, string])[];
}

export class CaptionsError extends SprigError {
  override readonly name = "CaptionsError";
}

/** The built-in captions `sprig retrieve` uses when none are given. */
export const BUILTIN_CAPTIONS: readonly string[] = [
  "a man is playing the guitar on a stage",
  "two women are dancing in the park",
  "a dog runs after a ball on the beach",
  "someone is cooking pasta in a small kitchen",
];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJsonCaptions(source: string, json: unknown): CaptionSet {
  if (!Array.isArray(json)) {
    throw new CaptionsError(`${source}: a JSON captions file must be a list of captions`);
  }
  const captions: Caption[] = [];
  const pairs: [string, string][] = [];
  json.forEach((entry, index) => {
    const where = `${source}: caption ${index}`;
    if (typeof entry === "string") {
      captions.push({ id: String(index), text: entry });
      return;
    }
    if (!isRecord(entry) || typeof entry.text !== "string") {
      throw new CaptionsError(`${where} must be a string or an object with a string "text"`);
    }
    for (const key of Object.keys(entry)) {
      if (!["text", "id", "videos"].includes(key)) {
        throw new CaptionsError(`${where} has an unknown field "${key}" (known: text, id, videos)`);
      }
    }
    if (entry.id !== undefined && typeof entry.id !== "string") {
      throw new CaptionsError(`${where}: "id" must be a string`);
    }
    const id = entry.id ?? String(index);
    const videos = entry.videos === undefined ? [] : entry.videos;
    const names = typeof videos === "string" ? [videos] : videos;
    if (!Array.isArray(names) || !names.every((n) => typeof n === "string")) {
      throw new CaptionsError(`${where}: "videos" must be a video name or a list of names`);
    }
    for (const name of names) pairs.push([name, id]);
    captions.push({ id, text: entry.text });
  });
  return checked({ source, captions, pairs });
}

function checked(set: CaptionSet): CaptionSet {
  if (set.captions.length === 0) throw new CaptionsError(`${set.source}: no captions`);
  const seen = new Set<string>();
  for (const caption of set.captions) {
    if (seen.has(caption.id)) {
      throw new CaptionsError(`${set.source}: caption id "${caption.id}" is used twice`);
    }
    seen.add(caption.id);
  }
  return set;
}

/** Parses captions from a file's text (JSON when it starts with "[", else one per line). */
export function parseCaptions(source: string, text: string): CaptionSet {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new CaptionsError(`${source} is not valid JSON: ${(error as Error).message}`);
    }
    return parseJsonCaptions(source, json);
  }
  const captions = text
    .split(/\r?\n/)
    .filter((line) => line.trim() !== "")
    .map((line, index) => ({ id: String(index), text: line }));
  return checked({ source, captions, pairs: [] });
}

export async function readCaptions(path: string): Promise<CaptionSet> {
  return parseCaptions(path, await readTextFile(path, "captions file"));
}

/** The built-in captions as a set. */
export function builtinCaptions(): CaptionSet {
  return {
    source: "<builtin captions>",
    captions: BUILTIN_CAPTIONS.map((text, i) => ({ id: String(i), text })),
    pairs: [],
  };
}

/** Reads a ground-truth file's (video, caption) pairs. */
export async function readGroundTruth(path: string): Promise<(readonly [string, string])[]> {
  const text = await readTextFile(path, "ground-truth file");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CaptionsError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  const list = isRecord(json) ? json.pairs : json;
  if (!Array.isArray(list)) {
    throw new CaptionsError(`${path}: expected {"pairs": [["video", "caption"], ...]}`);
  }
  return list.map((pair, i) => {
    if (
      !Array.isArray(pair) ||
      pair.length !== 2 ||
      !pair.every((x) => typeof x === "string" || (typeof x === "number" && Number.isInteger(x)))
    ) {
      throw new CaptionsError(`${path}: pair ${i} must be ["video", "caption"]`);
    }
    return [String(pair[0]), String(pair[1])] as const;
  });
}

/**
 * Ground truth as index lists both ways: for each video the captions describing it, for
 * each caption its videos. Every name must resolve; every video and caption needs at
 * least one pair (recall is undefined for a query without ground truth).
 */
export function groundTruthIndex(
  pairs: readonly (readonly [string, string])[],
  videoIds: readonly string[],
  captionIds: readonly string[],
  source: string,
): { videoToCaptions: number[][]; captionToVideos: number[][] } {
  const lookup = (ids: readonly string[], name: string, what: string): number => {
    let index = ids.indexOf(name);
    if (index < 0 && /^\d+$/.test(name) && Number(name) < ids.length) index = Number(name);
    if (index < 0) {
      throw new ConfigError(
        "groundTruth",
        `${source} names unknown ${what} "${name}" (known: ${ids.slice(0, 8).join(", ")}${ids.length > 8 ? ", ..." : ""})`,
      );
    }
    return index;
  };
  const videoToCaptions: number[][] = videoIds.map(() => []);
  const captionToVideos: number[][] = captionIds.map(() => []);
  for (const [video, caption] of pairs) {
    const v = lookup(videoIds, video, "video");
    const c = lookup(captionIds, caption, "caption");
    if (!videoToCaptions[v]!.includes(c)) videoToCaptions[v]!.push(c);
    if (!captionToVideos[c]!.includes(v)) captionToVideos[c]!.push(v);
  }
  const lonelyVideo = videoToCaptions.findIndex((list) => list.length === 0);
  if (lonelyVideo >= 0) {
    throw new ConfigError(
      "groundTruth",
      `${source}: video "${videoIds[lonelyVideo]}" has no caption`,
    );
  }
  const lonelyCaption = captionToVideos.findIndex((list) => list.length === 0);
  if (lonelyCaption >= 0) {
    throw new ConfigError(
      "groundTruth",
      `${source}: caption "${captionIds[lonelyCaption]}" has no video`,
    );
  }
  return { videoToCaptions, captionToVideos };
}
