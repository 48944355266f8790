import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encode, tokenize } from "../../src/inputs/tokenizer.js";
import {
  BERT_BASE_VOCAB_SIZE,
  builtinVocab,
  builtinVocabTokens,
} from "../../src/inputs/vocab-builtin.js";
import { parseVocab, readVocab, TokenizerError, type Vocab } from "../../src/inputs/vocab.js";
import { ConfigError } from "../../src/ir/errors.js";
import { readSafetensors } from "../../src/io/safetensors.js";

const T1 = "../../../shared/conformance/video-text/t1_tokenizer_wordpiece";
const T1_JSON = fileURLToPath(new URL(`${T1}.json`, import.meta.url));
const T1_SAFETENSORS = fileURLToPath(new URL(`${T1}.safetensors`, import.meta.url));

interface T1Sidecar {
  readonly vocab: string[];
  readonly texts: string[];
  readonly max_length: number;
  readonly tokens: string[][];
}

function loadT1Sidecar(): T1Sidecar {
  return JSON.parse(readFileSync(T1_JSON, "utf8")) as T1Sidecar;
}

/** A vocab from a token list, one token per line. */
function vocabOf(tokens: readonly string[], source = "test-vocab.txt"): Vocab {
  return parseVocab(tokens.join("\n"), source);
}

const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/** Ids: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then the words from 5 on. */
const SMALL = vocabOf([
  ...SPECIALS,
  "un", //        5
  "##aff", //     6
  "##able", //    7
  "play", //      8
  "##in", //      9
  "##ing", //    10
  "##g", //      11
  "the", //      12
  "dog", //      13
  "##s", //      14
  "cafe", //     15
  "it", //       16
  "'", //        17
  "s", //        18
  "!", //        19
  ",", //        20
  "¿", //        21
  "$", //        22
  "中", //       23
  "国", //       24
  "𠀀", //       25 (U+20000, CJK Extension B)
  "x", //        26
  "##x", //      27
  "𐐨", //       28 (U+10428, a lower-case Deseret letter outside the BMP)
  "##𐐨", //      29
  "οδοσ", //     30
  "[", //        31
  "]", //        32
  "mask", //     33
]);

describe("t1_tokenizer_wordpiece (the authors' BertTokenizer)", () => {
  it("gives the reference WordPiece strings for every text", () => {
    const sidecar = loadT1Sidecar();
    const vocab = parseVocab(sidecar.vocab.join("\n"), T1_JSON);
    expect(sidecar.texts).toHaveLength(sidecar.tokens.length);
    sidecar.texts.forEach((text, i) => {
      expect(tokenize(vocab, text), `text ${i}: ${JSON.stringify(text)}`).toEqual(
        sidecar.tokens[i],
      );
    });
  });

  it("gives exactly the reference input_ids and attention_mask", async () => {
    const sidecar = loadT1Sidecar();
    const vocab = parseVocab(sidecar.vocab.join("\n"), T1_JSON);
    const expected = (await readSafetensors(T1_SAFETENSORS)).tensors;
    const wantIds = expected.get("expected.input_ids");
    const wantMask = expected.get("expected.attention_mask");
    expect(wantIds?.dtype).toBe("i32");
    expect(wantMask?.dtype).toBe("i32");
    expect(wantIds?.shape).toEqual([12, 16]);

    const got = encode(vocab, sidecar.texts, sidecar.max_length);
    expect(got.inputIds.shape).toEqual([12, 16]);
    expect(got.attentionMask.shape).toEqual([12, 16]);
    expect(Array.from(got.inputIds.data)).toEqual(Array.from(wantIds!.data));
    expect(Array.from(got.attentionMask.data)).toEqual(Array.from(wantMask!.data));
  });

  it("resolves the special ids by string ([UNK]=3, [CLS]=4 in this vocab)", () => {
    const vocab = parseVocab(loadT1Sidecar().vocab.join("\n"), T1_JSON);
    expect([vocab.padId, vocab.unkId, vocab.clsId]).toEqual([0, 3, 4]);
  });

  it("covers the hard characters it is meant to pin", () => {
    const texts = loadT1Sidecar().texts;
    const some = (pattern: RegExp) => texts.some((text) => pattern.test(text));
    expect(some(/\u00a0/u)).toBe(true); // NBSP (Zs)
    expect(some(/\u200b/u)).toBe(true); // zero-width space (Cf)
    expect(texts.some((text) => text.includes("\u0000"))).toBe(true); // NUL
    expect(some(/\t/u) && some(/\n/u) && some(/\r/u)).toBe(true);
    expect(some(/\p{Mn}/u)).toBe(true); // a combining accent
    expect(some(/\u00e9/u)).toBe(true); // a precomposed accent
    expect(some(/\p{Script=Han}/u)).toBe(true);
    expect(texts).toContain("");
    const vocab = parseVocab(loadT1Sidecar().vocab.join("\n"), T1_JSON);
    expect(texts.some((text) => tokenize(vocab, text).length > 15)).toBe(true); // truncation
  });
});

describe("parseVocab", () => {
  it("numbers tokens by line, with or without a trailing newline", () => {
    for (const text of ["[PAD]\n[UNK]\n[CLS]\ndog", "[PAD]\n[UNK]\n[CLS]\ndog\n"]) {
      const vocab = parseVocab(text, "v.txt");
      expect(vocab.tokens).toEqual(["[PAD]", "[UNK]", "[CLS]", "dog"]);
      expect(vocab.idOf("dog")).toBe(3);
    }
  });

  it("ends lines at \\r\\n and a lone \\r as Python's text mode does", () => {
    const vocab = parseVocab("[PAD]\r\n[UNK]\r[CLS]\r\ndog\r\n", "v.txt");
    expect(vocab.tokens).toEqual(["[PAD]", "[UNK]", "[CLS]", "dog"]);
  });

  it("keeps an empty line as the token '' and other whitespace verbatim", () => {
    const vocab = parseVocab("[PAD]\n\n[UNK]\n[CLS]\n dog \n", "v.txt");
    expect(vocab.tokens).toEqual(["[PAD]", "", "[UNK]", "[CLS]", " dog "]);
    expect(vocab.unkId).toBe(2);
  });

  it("skips one leading byte-order mark", () => {
    const vocab = parseVocab("\uFEFF[PAD]\n[UNK]\n[CLS]\n", "v.txt");
    expect(vocab.padId).toBe(0);
    expect(vocab.tokens[0]).toBe("[PAD]");
  });

  it("looks the special tokens up by string, wherever they are", () => {
    const vocab = vocabOf(["dog", "[CLS]", "cat", "[UNK]", "[PAD]"]);
    expect([vocab.padId, vocab.unkId, vocab.clsId]).toEqual([4, 3, 1]);
    expect(vocab.idOf("unlisted")).toBe(3);
  });

  it("rejects an empty vocabulary", () => {
    for (const text of ["", "\uFEFF"]) {
      expect(() => parseVocab(text, "empty.txt")).toThrow(TokenizerError);
      expect(() => parseVocab(text, "empty.txt")).toThrow("empty.txt: the vocabulary is empty");
    }
  });

  it("rejects a duplicated token, naming both lines", () => {
    const text = "[PAD]\n[UNK]\ndog\n[CLS]\ndog\n";
    expect(() => parseVocab(text, "dup.txt")).toThrow(
      'dup.txt:5: token "dog" is listed twice (also on line 3)',
    );
  });

  it("rejects a vocabulary without [PAD], [UNK] or [CLS]", () => {
    for (const missing of ["[PAD]", "[UNK]", "[CLS]"]) {
      const tokens = ["[PAD]", "[UNK]", "[CLS]", "dog"].filter((token) => token !== missing);
      expect(() => vocabOf(tokens, "nospecial.txt")).toThrow(TokenizerError);
      expect(() => vocabOf(tokens, "nospecial.txt")).toThrow(`nospecial.txt: no ${missing} token`);
    }
  });

  it("does not take a lower-case special for the real one", () => {
    expect(() => vocabOf(["[pad]", "[UNK]", "[CLS]"])).toThrow("no [PAD] token");
  });
});

describe("readVocab", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "sprig-vocab-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a UTF-8 file", async () => {
    const path = join(dir, "vocab.txt");
    await writeFile(path, "[PAD]\n[UNK]\n[CLS]\ncafé\n中\n", "utf8");
    const vocab = await readVocab(path);
    expect(vocab.tokens).toEqual(["[PAD]", "[UNK]", "[CLS]", "café", "中"]);
    expect(vocab.source).toBe(path);
  });

  it("names an unreadable path in one error", async () => {
    const path = join(dir, "missing.txt");
    await expect(readVocab(path)).rejects.toThrow(TokenizerError);
    await expect(readVocab(path)).rejects.toThrow(`${path}: cannot read vocabulary file (ENOENT)`);
  });

  it("names the line that is not valid UTF-8", async () => {
    const path = join(dir, "latin1.txt");
    const bytes = new Uint8Array([...new TextEncoder().encode("[PAD]\n[UNK]\ncaf"), 0xe9, 0x0a]);
    await writeFile(path, bytes);
    await expect(readVocab(path)).rejects.toThrow(`${path}:3: not valid UTF-8`);
  });

  it("reports a duplicate with the file's path", async () => {
    const path = join(dir, "dup.txt");
    await writeFile(path, "[PAD]\n[UNK]\n[CLS]\n[UNK]\n", "utf8");
    await expect(readVocab(path)).rejects.toThrow(
      `${path}:4: token "[UNK]" is listed twice (also on line 2)`,
    );
  });
});

describe("tokenize", () => {
  it("splits a word into the longest matching pieces, left to right", () => {
    expect(tokenize(SMALL, "unaffable")).toEqual(["un", "##aff", "##able"]);
    // "##ing" beats the shorter "##in" + "##g".
    expect(tokenize(SMALL, "playing")).toEqual(["play", "##ing"]);
    expect(tokenize(SMALL, "dogs")).toEqual(["dog", "##s"]);
  });

  it("makes a word with an unmatched remainder one [UNK], not a partial split", () => {
    expect(tokenize(SMALL, "unaffablez dog")).toEqual(["[UNK]", "dog"]);
    expect(tokenize(SMALL, "zdog")).toEqual(["[UNK]"]);
  });

  it("makes a word of more than 100 code points one [UNK]", () => {
    const hundred = "x".repeat(100);
    expect(tokenize(SMALL, hundred)).toEqual(["x", ...Array<string>(99).fill("##x")]);
    expect(tokenize(SMALL, `${hundred}x`)).toEqual(["[UNK]"]);
  });

  it("counts code points, not UTF-16 units, for the 100 limit", () => {
    const letter = "\u{10428}"; // two UTF-16 units
    expect(tokenize(SMALL, letter.repeat(100))).toEqual([
      letter,
      ...Array<string>(99).fill(`##${letter}`),
    ]);
    expect(tokenize(SMALL, letter.repeat(101))).toEqual(["[UNK]"]);
  });

  it("lower-cases, and strips precomposed and combining accents", () => {
    expect(tokenize(SMALL, "Café CAFÉ cafe\u0301 CAFE\u0301")).toEqual([
      "cafe",
      "cafe",
      "cafe",
      "cafe",
    ]);
  });

  it("lower-cases one code point at a time (no final sigma)", () => {
    // Python's per-character str.lower() maps each Σ to σ; a context-aware lower() would
    // give "οδος", which this vocab does not list.
    expect(tokenize(SMALL, "ΟΔΟΣ")).toEqual(["οδοσ"]);
  });

  it("puts CJK ideographs, BMP and beyond, in words of their own", () => {
    expect(tokenize(SMALL, "the中国dog")).toEqual(["the", "中", "国", "dog"]);
    expect(tokenize(SMALL, "dog\u{20000}dog")).toEqual(["dog", "\u{20000}", "dog"]);
    // Hiragana is outside the CJK ideograph blocks: one word, not in the vocab.
    expect(tokenize(SMALL, "dog ひら")).toEqual(["dog", "[UNK]"]);
  });

  it("splits every punctuation character off, but not symbols", () => {
    expect(tokenize(SMALL, "it's")).toEqual(["it", "'", "s"]);
    expect(tokenize(SMALL, "dog!,¿dog")).toEqual(["dog", "!", ",", "¿", "dog"]);
    // "$" is an ASCII symbol, punctuation to BERT; "©" (So) is not, so "dog©" stays one word.
    expect(tokenize(SMALL, "$dog")).toEqual(["$", "dog"]);
    expect(tokenize(SMALL, "dog© the")).toEqual(["[UNK]", "the"]);
  });

  it("drops NUL, U+FFFD, control and format characters, joining their neighbours", () => {
    expect(tokenize(SMALL, "do\u0000g do\uFFFDg do\u0007g do\u200bg do\u00adg")).toEqual([
      "dog",
      "dog",
      "dog",
      "dog",
      "dog",
    ]);
  });

  it("treats tabs, newlines, NBSP and other space separators as spaces", () => {
    expect(tokenize(SMALL, "the\tdog\nthe\rdog\u00a0the\u3000dog\u2009the")).toEqual([
      "the",
      "dog",
      "the",
      "dog",
      "the",
      "dog",
      "the",
    ]);
  });

  it("splits on U+2028 and U+2029 as Python's str.split() does", () => {
    expect(tokenize(SMALL, "the\u2028dog\u2029the")).toEqual(["the", "dog", "the"]);
  });

  it("gives no pieces for empty or blank text", () => {
    expect(tokenize(SMALL, "")).toEqual([]);
    expect(tokenize(SMALL, " \t\n\u00a0\u200b\u0000")).toEqual([]);
  });

  it("keeps special tokens written in the text, even inside a word", () => {
    expect(tokenize(SMALL, "the dog[MASK]s")).toEqual(["the", "dog", "[MASK]", "s"]);
    // Lower-case is not the special token: it is punctuation and a word.
    expect(tokenize(SMALL, "[mask]")).toEqual(["[", "mask", "]"]);
    // Only the literal text counts: a zero-width space inside is dropped after lower-casing,
    // so this becomes "[cls]": punctuation and a word the vocab lacks.
    expect(tokenize(SMALL, "[CL\u200bS] dog")).toEqual(["[", "[UNK]", "]", "dog"]);
  });

  it("rejects a written special token the vocabulary does not list", () => {
    const noMask = vocabOf(["[PAD]", "[UNK]", "[CLS]", "dog"], "nomask.txt");
    expect(() => tokenize(noMask, "dog [MASK]")).toThrow(
      "nomask.txt: the text contains [MASK], which this vocabulary does not list",
    );
  });
});

describe("encode", () => {
  const PAD = 0;
  const UNK = 1;
  const CLS = 2;

  it("puts [CLS] first, no [SEP], and pads with [PAD] on the right", () => {
    const { inputIds, attentionMask } = encode(SMALL, ["the dogs", ""], 6);
    expect(inputIds.shape).toEqual([2, 6]);
    expect(Array.from(inputIds.data)).toEqual([
      CLS,
      12,
      13,
      14,
      PAD,
      PAD,
      CLS,
      PAD,
      PAD,
      PAD,
      PAD,
      PAD,
    ]);
    expect(Array.from(attentionMask.data)).toEqual([1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0]);
  });

  it("keeps maxLength - 1 pieces when it truncates", () => {
    // the dog ##s ! dog: 5 pieces; maxLength 4 keeps [CLS] + 3.
    const { inputIds, attentionMask } = encode(SMALL, ["the dogs! dog"], 4);
    expect(Array.from(inputIds.data)).toEqual([CLS, 12, 13, 14]);
    expect(Array.from(attentionMask.data)).toEqual([1, 1, 1, 1]);
  });

  it("fills a row exactly when the text has maxLength - 1 pieces", () => {
    const { inputIds, attentionMask } = encode(SMALL, ["unaffable"], 4);
    expect(Array.from(inputIds.data)).toEqual([CLS, 5, 6, 7]);
    expect(Array.from(attentionMask.data)).toEqual([1, 1, 1, 1]);
  });

  it("maps [UNK] pieces to the [UNK] id and written specials to theirs", () => {
    const { inputIds } = encode(SMALL, ["zzz [SEP] dog"], 5);
    expect(Array.from(inputIds.data)).toEqual([CLS, UNK, 3, 13, PAD]);
  });

  it("accepts an empty batch", () => {
    const { inputIds, attentionMask } = encode(SMALL, [], 8);
    expect(inputIds.shape).toEqual([0, 8]);
    expect(attentionMask.data).toHaveLength(0);
  });

  it("accepts maxLength 2 and rejects anything smaller or fractional", () => {
    expect(Array.from(encode(SMALL, ["the dog"], 2).inputIds.data)).toEqual([CLS, 12]);
    for (const bad of [1, 0, -3, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => encode(SMALL, ["dog"], bad)).toThrow(ConfigError);
      expect(() => encode(SMALL, ["dog"], bad)).toThrow('config field "maxLength"');
    }
  });
});

describe("builtinVocab (stand-in for bert-base-uncased's vocab.txt)", () => {
  it("fits BERT-base's embedding table and has bert-base-uncased's special ids", () => {
    const vocab = builtinVocab();
    expect(vocab.size).toBeLessThanOrEqual(BERT_BASE_VOCAB_SIZE);
    expect([vocab.padId, vocab.unkId, vocab.clsId]).toEqual([0, 100, 101]);
    expect([vocab.idOf("[SEP]"), vocab.idOf("[MASK]")]).toEqual([102, 103]);
    expect([vocab.tokens[1], vocab.tokens[99]]).toEqual(["[unused0]", "[unused98]"]);
  });

  it("is the same on every build", () => {
    expect(builtinVocabTokens()).toEqual(builtinVocabTokens());
    expect(builtinVocab().tokens).toEqual(builtinVocabTokens());
  });

  it("encodes a caption of common words without [UNK], one piece per word", () => {
    const vocab = builtinVocab();
    const caption = "A man is playing the guitar in the park, while two women are dancing.";
    const pieces = tokenize(vocab, caption);
    expect(pieces).toEqual([
      "a",
      "man",
      "is",
      "playing",
      "the",
      "guitar",
      "in",
      "the",
      "park",
      ",",
      "while",
      "two",
      "women",
      "are",
      "dancing",
      ".",
    ]);
    const { inputIds } = encode(vocab, [caption], 32);
    expect(Array.from(inputIds.data)).not.toContain(vocab.unkId);
  });

  it("lists each word so that it tokenizes to itself", () => {
    const vocab = builtinVocab();
    const words = vocab.tokens.filter((token, id) => id > 103 && /^[a-z]{2,}$/u.test(token));
    expect(words.length).toBeGreaterThan(300);
    for (const word of words) expect(tokenize(vocab, word), word).toEqual([word]);
  });

  it("spells out unlisted words and numbers instead of [UNK]", () => {
    const vocab = builtinVocab();
    expect(tokenize(vocab, "Xylophone 42")).toEqual([
      "x",
      "##y",
      "##l",
      "##o",
      "##p",
      "##h",
      "##o",
      "##n",
      "##e",
      "4",
      "##2",
    ]);
  });
});
