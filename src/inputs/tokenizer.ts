/**
 * The BERT-uncased WordPiece tokenizer, reproducing the authors' `BertTokenizer`
 * (models/tokenization_bert.py, on the transformers 4.15 base class, do_lower_case=True)
 * as tasks/retrieval_utils.py calls it:
 *   tokenizer(texts, padding="max_length", truncation=True, max_length=L)
 *
 * Why our own implementation and not a library: @huggingface/tokenizers (Tokenizers.js, pure
 * JS) reproduces the "fast" tokenizers' tokenizer.json pipeline, a different implementation
 * from the authors' slow Python tokenizer with its own edge-case rules and a post-processor
 * that appends [SEP]; it reads tokenizer.json, not the vocab.txt checkpoints ship with; and
 * it would be a package import in a core layer that takes only src/ir and node builtins.
 * The conformance case pins the slow tokenizer, quirk of no [SEP] included, and its pipeline
 * is short enough to state step by step, so sprig implements it here.
 *
 * Pipeline for one text (each step names the Python it mirrors):
 *  1. Special-token split (PreTrainedTokenizer.tokenize, with the special tokens registered
 *     by from_pretrained as the authors' tasks/shared_utils.py loads it): literal "[UNK]",
 *     "[SEP]", "[PAD]", "[CLS]", "[MASK]" in the text become those tokens; the text between
 *     them is tokenized piece by piece. One the vocab lacks is an error (the authors'
 *     tokenizer would give it an id past the end of the vocab).
 *  2. Lower-casing, one code point at a time (the base class's `re.sub(..., .lower())` on
 *     single characters; so no final-sigma rule: "ΟΔΟΣ" -> "οδοσ").
 *  3. BasicTokenizer: drop U+0000, U+FFFD and category C* except \t \n \r; \t \n \r and Zs
 *     -> " "; " " around CJK ideographs; split on whitespace; per word: NFD and drop
 *     category Mn (accents), then split off every punctuation character (ASCII
 *     non-alphanumerics and category P*) as its own word.
 *  4. WordpieceTokenizer: per word, greedy longest match left to right, continuation pieces
 *     prefixed "##"; a word of more than 100 code points, or with a remainder no piece
 *     matches, becomes one [UNK].
 *  5. Model inputs (build_inputs_with_special_tokens of the authors' subclass): [CLS] + the
 *     first L - 1 pieces, NO [SEP]; right-padded with [PAD] to L; mask 1 on [CLS] + text.
 *
 * Unicode tables come from the JavaScript engine (Node's ICU), the authors' from Python's
 * unicodedata; they agree except on code points assigned in one Unicode version and not the
 * other. A real checkpoint needs its own vocab.txt; see vocab-builtin.ts for the stand-in.
 */
import { ConfigError } from "../ir/errors.js";
import { type HostTensor, i32Tensor } from "../ir/tensor.js";
import {
  CLS_TOKEN,
  MASK_TOKEN,
  PAD_TOKEN,
  SEP_TOKEN,
  TokenizerError,
  UNK_TOKEN,
  type Vocab,
} from "./vocab.js";

export { parseVocab, readVocab, TokenizerError, Vocab } from "./vocab.js";

/** The longest word WordPiece splits; longer words are one [UNK] (max_input_chars_per_word). */
export const MAX_WORD_CODE_POINTS = 100;

/** The smallest max_length that leaves room for [CLS] and one piece. */
export const MIN_MAX_LENGTH = 2;

/**
 * The tokenizer's special tokens (all_special_tokens) written in raw text. None is a prefix
 * of another, so a plain alternation finds the same leftmost-longest matches as the base
 * class's trie.
 */
const SPECIAL_TOKEN_PATTERN = new RegExp(
  [UNK_TOKEN, SEP_TOKEN, PAD_TOKEN, CLS_TOKEN, MASK_TOKEN].map(escapeRegExp).join("|"),
  "gu",
);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/gu, "\\$&");
}

const CONTINUATION_PREFIX = "##";

export type I32Tensor = HostTensor & { dtype: "i32" };

/** Model inputs for a batch of B texts, both [B, maxLength]. */
export interface EncodedTexts {
  readonly inputIds: I32Tensor;
  readonly attentionMask: I32Tensor;
}

// ---------------------------------------------------------------------------------------
// Character classes (transformers.tokenization_utils and BasicTokenizer)
// ---------------------------------------------------------------------------------------

const OTHER_CATEGORY = /^\p{C}$/u; // Cc, Cf, Cs, Co, Cn
const SPACE_SEPARATOR = /^\p{Zs}$/u;
const PUNCTUATION_CATEGORY = /^\p{P}$/u;
const NONSPACING_MARK = /\p{Mn}/gu;

/** _is_whitespace: " ", \t, \n, \r and category Zs. */
function isBertWhitespace(char: string): boolean {
  return (
    char === " " || char === "\t" || char === "\n" || char === "\r" || SPACE_SEPARATOR.test(char)
  );
}

/** _is_control: category C*, except \t \n \r (which count as whitespace). */
function isBertControl(char: string): boolean {
  if (char === "\t" || char === "\n" || char === "\r") return false;
  return OTHER_CATEGORY.test(char);
}

/**
 * _is_punctuation: every ASCII non-alphanumeric (33-47, 58-64, 91-96, 123-126, so also
 * "$", "^", "`" which Unicode calls symbols) and Unicode category P*. Symbols (©, ☃) are not.
 */
function isBertPunctuation(char: string): boolean {
  const cp = char.codePointAt(0)!;
  const asciiPunct =
    (cp >= 33 && cp <= 47) ||
    (cp >= 58 && cp <= 64) ||
    (cp >= 91 && cp <= 96) ||
    (cp >= 123 && cp <= 126);
  return asciiPunct || PUNCTUATION_CATEGORY.test(char);
}

/** _is_chinese_char: the CJK Unified Ideographs blocks and their extensions and compatibility forms. */
const CJK_RANGES: readonly (readonly [number, number])[] = [
  [0x4e00, 0x9fff],
  [0x3400, 0x4dbf],
  [0x20000, 0x2a6df],
  [0x2a700, 0x2b73f],
  [0x2b740, 0x2b81f],
  [0x2b820, 0x2ceaf],
  [0xf900, 0xfaff],
  [0x2f800, 0x2fa1f],
];

function isCjkIdeograph(char: string): boolean {
  const cp = char.codePointAt(0)!;
  return CJK_RANGES.some(([first, last]) => cp >= first && cp <= last);
}

/**
 * Python's str.split() separators that can survive cleaning: " " and U+2028 / U+2029 (line
 * and paragraph separators: category Zl / Zp, so neither control nor Zs, yet isspace()).
 * The other Python whitespace is category Cc or Zs, already dropped or mapped to " ".
 */
const PYTHON_SPLIT_WHITESPACE = /[ \u2028\u2029]+/u;

function splitOnWhitespace(text: string): string[] {
  return text.split(PYTHON_SPLIT_WHITESPACE).filter((word) => word !== "");
}

// ---------------------------------------------------------------------------------------
// Steps 1-3: special tokens, lower-casing, BasicTokenizer
// ---------------------------------------------------------------------------------------

/** A run of raw text, or one literal special token found in it. */
interface Segment {
  readonly text: string;
  readonly special: boolean;
}

function splitOnSpecialTokens(text: string): Segment[] {
  const segments: Segment[] = [];
  let start = 0;
  for (const match of text.matchAll(SPECIAL_TOKEN_PATTERN)) {
    if (match.index > start)
      segments.push({ text: text.slice(start, match.index), special: false });
    segments.push({ text: match[0], special: true });
    start = match.index + match[0].length;
  }
  if (start < text.length) segments.push({ text: text.slice(start), special: false });
  return segments;
}

/** Lower-cases each code point on its own (full Unicode mapping, no context rules). */
function lowerCasePerCodePoint(text: string): string {
  let out = "";
  for (const char of text) out += char.toLowerCase();
  return out;
}

/** _clean_text then _tokenize_chinese_chars, one code point at a time. */
function cleanAndSpaceCjk(text: string): string {
  let out = "";
  for (const char of text) {
    if (char === "\u0000" || char === "\uFFFD" || isBertControl(char)) continue;
    if (isBertWhitespace(char)) out += " ";
    else if (isCjkIdeograph(char)) out += ` ${char} `;
    else out += char;
  }
  return out;
}

/** _run_strip_accents: canonical decomposition, then drop the nonspacing marks. */
function stripAccents(word: string): string {
  return word.normalize("NFD").replace(NONSPACING_MARK, "");
}

/** _run_split_on_punc: every punctuation character becomes a word of its own. */
function splitOnPunctuation(word: string): string[] {
  const pieces: string[] = [];
  let current = "";
  for (const char of word) {
    if (isBertPunctuation(char)) {
      if (current !== "") pieces.push(current);
      pieces.push(char);
      current = "";
    } else {
      current += char;
    }
  }
  if (current !== "") pieces.push(current);
  return pieces;
}

/**
 * BasicTokenizer.tokenize on text already lower-cased by step 2. Its never_split check (keep
 * a word equal to a special token whole) cannot fire here: the special tokens are upper-case
 * and were split off in step 1, so every other word reaching this point is lower-case.
 */
function basicTokenize(text: string): string[] {
  const words: string[] = [];
  for (const word of splitOnWhitespace(cleanAndSpaceCjk(text))) {
    for (const piece of splitOnPunctuation(stripAccents(word)))
      words.push(...splitOnWhitespace(piece));
  }
  return words;
}

// ---------------------------------------------------------------------------------------
// Step 4: WordPiece
// ---------------------------------------------------------------------------------------

/**
 * Greedy longest-match-first: from position `start`, take the longest vocab entry equal to
 * chars[start..end) ("##"-prefixed unless start = 0), continue at `end`; a position where
 * no entry matches makes the whole word [UNK].
 */
function wordPieces(vocab: Vocab, word: string): string[] {
  const chars = Array.from(word);
  if (chars.length > MAX_WORD_CODE_POINTS) return [UNK_TOKEN];
  const pieces: string[] = [];
  let start = 0;
  while (start < chars.length) {
    let piece: string | undefined;
    let end = chars.length;
    for (; end > start; end -= 1) {
      const candidate = (start > 0 ? CONTINUATION_PREFIX : "") + chars.slice(start, end).join("");
      if (vocab.has(candidate)) {
        piece = candidate;
        break;
      }
    }
    if (piece === undefined) return [UNK_TOKEN];
    pieces.push(piece);
    start = end;
  }
  return pieces;
}

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

/**
 * A special token written in the text. The authors' tokenizer would give one that its vocab
 * lacks a new id past the end of the vocabulary (an embedding row that does not exist), so
 * that is an error here rather than a silent [UNK].
 */
function literalSpecialToken(vocab: Vocab, token: string): string {
  if (!vocab.has(token)) {
    throw new TokenizerError(
      vocab.source,
      undefined,
      `the text contains ${token}, which this vocabulary does not list`,
    );
  }
  return token;
}

/** The WordPiece strings of one text, before truncation (the authors' tokenizer.tokenize). */
export function tokenize(vocab: Vocab, text: string): string[] {
  const pieces: string[] = [];
  for (const segment of splitOnSpecialTokens(text)) {
    if (segment.special) {
      pieces.push(literalSpecialToken(vocab, segment.text));
      continue;
    }
    for (const word of basicTokenize(lowerCasePerCodePoint(segment.text))) {
      pieces.push(...wordPieces(vocab, word));
    }
  }
  return pieces;
}

/**
 * Token ids and attention mask for a batch, [texts.length, maxLength] each:
 *   ids[b]  = [CLS] + first (maxLength - 1) pieces of texts[b], then [PAD] to maxLength
 *   mask[b] = 1 on [CLS] and the kept pieces, 0 on the padding.
 * maxLength must be an integer >= 2 (ConfigError "maxLength").
 */
export function encode(vocab: Vocab, texts: readonly string[], maxLength: number): EncodedTexts {
  if (!Number.isSafeInteger(maxLength) || maxLength < MIN_MAX_LENGTH) {
    throw new ConfigError(
      "maxLength",
      `must be an integer >= ${MIN_MAX_LENGTH} ([CLS] plus at least one piece), got ${maxLength}`,
    );
  }
  const inputIds = new Int32Array(texts.length * maxLength).fill(vocab.padId);
  const attentionMask = new Int32Array(texts.length * maxLength);
  texts.forEach((text, row) => {
    const ids = [vocab.clsId, ...tokenize(vocab, text).map((piece) => vocab.idOf(piece))];
    const kept = Math.min(ids.length, maxLength);
    const rowStart = row * maxLength;
    for (let i = 0; i < kept; i += 1) {
      inputIds[rowStart + i] = ids[i]!;
      attentionMask[rowStart + i] = 1;
    }
  });
  const shape = [texts.length, maxLength];
  return { inputIds: i32Tensor(shape, inputIds), attentionMask: i32Tensor(shape, attentionMask) };
}
