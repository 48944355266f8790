/**
 * WordPiece vocabularies: the `vocab.txt` of a BERT checkpoint, one token per line, the
 * token's id being its 0-based line number.
 *
 * Reading follows the authors' `load_vocab` (models/tokenization_bert.py): Python opens the
 * file in text mode, so "\n", "\r\n" and a lone "\r" all end a line, and each line minus its
 * terminator is one token, kept verbatim otherwise (an empty line is the token ""). Where
 * the authors' loader silently does something no checkpoint intends, sprig stops with a
 * TokenizerError naming the file and line instead:
 * - a token listed twice (Python keeps the later id; the earlier line becomes unreachable);
 * - no [PAD], [UNK] or [CLS] (the tokenizer looks these up by string, never by position);
 * - an empty file.
 * One leading byte-order mark is skipped (Python's "utf-8" codec would keep it inside the
 * first token, renaming "[PAD]" to "\uFEFF[PAD]").
 */
import { FileReadError, MAX_TEXT_FILE_BYTES, readRegularFile } from "../io/files.js";
import { SprigError } from "../ir/errors.js";

/** A vocabulary file is unreadable or malformed, or text cannot be tokenized with it. */
export class TokenizerError extends SprigError {
  override readonly name = "TokenizerError";
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    detail: string,
  ) {
    super(`${file}${line === undefined ? "" : `:${line}`}: ${detail}`);
  }
}

/** The special tokens the BERT tokenizer needs to build model inputs. */
export const PAD_TOKEN = "[PAD]";
export const UNK_TOKEN = "[UNK]";
export const CLS_TOKEN = "[CLS]";
export const SEP_TOKEN = "[SEP]";
export const MASK_TOKEN = "[MASK]";

const REQUIRED_SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN, CLS_TOKEN] as const;

/** An immutable token <-> id table with the special ids resolved. */
export class Vocab {
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  private readonly idByToken: ReadonlyMap<string, number>;

  private constructor(
    /** Where the tokens came from (a path, or a label such as "<builtin vocab>"). */
    readonly source: string,
    /** Token strings in id order. */
    readonly tokens: readonly string[],
    idByToken: ReadonlyMap<string, number>,
  ) {
    this.idByToken = idByToken;
    const idOfSpecial = (token: string) => idByToken.get(token)!;
    this.padId = idOfSpecial(PAD_TOKEN);
    this.unkId = idOfSpecial(UNK_TOKEN);
    this.clsId = idOfSpecial(CLS_TOKEN);
  }

  /**
   * Validates `tokens` (id order; line numbers in errors are index + 1) and builds the table.
   * Throws a TokenizerError for an empty list, a duplicate (naming both lines) or a missing
   * [PAD], [UNK] or [CLS].
   */
  static fromTokens(tokens: readonly string[], source: string): Vocab {
    if (tokens.length === 0) throw new TokenizerError(source, undefined, "the vocabulary is empty");
    const idByToken = new Map<string, number>();
    tokens.forEach((token, id) => {
      const firstId = idByToken.get(token);
      if (firstId !== undefined) {
        throw new TokenizerError(
          source,
          id + 1,
          `token ${JSON.stringify(token)} is listed twice (also on line ${firstId + 1})`,
        );
      }
      idByToken.set(token, id);
    });
    for (const special of REQUIRED_SPECIAL_TOKENS) {
      if (!idByToken.has(special)) {
        throw new TokenizerError(
          source,
          undefined,
          `no ${special} token (BERT vocabularies list ${REQUIRED_SPECIAL_TOKENS.join(", ")}; ` +
            "they are looked up by string)",
        );
      }
    }
    return new Vocab(source, [...tokens], idByToken);
  }

  get size(): number {
    return this.tokens.length;
  }

  has(token: string): boolean {
    return this.idByToken.has(token);
  }

  /** The id of `token`, or the [UNK] id when it is not listed (the authors' convert_tokens_to_ids). */
  idOf(token: string): number {
    return this.idByToken.get(token) ?? this.unkId;
  }
}

/**
 * Splits vocab.txt text into tokens as Python's text-mode readlines() does: "\r\n", "\r"
 * and "\n" end a line, and a terminator at the very end does not start another token.
 */
export function vocabLines(text: string): string[] {
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const lines = body.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** Parses vocab.txt contents; `source` names the file in errors. */
export function parseVocab(text: string, source: string): Vocab {
  return Vocab.fromTokens(vocabLines(text), source);
}

/** Reads and parses a vocab.txt file (UTF-8). */
export async function readVocab(path: string): Promise<Vocab> {
  let bytes: Uint8Array;
  try {
    // A regular file only (a FIFO or /dev/zero is refused unread), at most 64 MiB.
    bytes = await readRegularFile(path, "vocabulary file", MAX_TEXT_FILE_BYTES);
  } catch (error) {
    if (error instanceof FileReadError) {
      const problem = error.problem.replace("cannot read file", "cannot read vocabulary file");
      throw new TokenizerError(path, undefined, problem);
    }
    throw error;
  }
  return parseVocab(decodeUtf8(bytes, path), path);
}

/** Decodes strict UTF-8; on invalid bytes names the first line that holds them. */
function decodeUtf8(bytes: Uint8Array, path: string): string {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  try {
    return decoder.decode(bytes);
  } catch {
    throw new TokenizerError(path, firstInvalidLine(bytes), "not valid UTF-8");
  }
}

/** 1-based number of the first "\n"-terminated line that is not valid UTF-8. */
function firstInvalidLine(bytes: Uint8Array): number | undefined {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let line = 1;
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    try {
      decoder.decode(bytes.subarray(start, end));
    } catch {
      return line;
    }
    start = end + 1;
    line += 1;
  }
  return undefined;
}
