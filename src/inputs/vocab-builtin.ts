/**
 * A built-in stand-in vocabulary, so that the seeded-weights demo can tokenize captions on a
 * machine with no files and no network. It is NOT bert-base-uncased's vocab.txt: ids of
 * ordinary words differ, so a real checkpoint must be run with its own vocab.txt
 * (`--vocab FILE`); token ids from this vocab only make sense with seeded weights.
 *
 * Layout (generated in code, deterministic):
 *   0         [PAD]
 *   1..99     [unused0]..[unused98]
 *   100..103  [UNK] [CLS] [SEP] [MASK]        (the special ids of bert-base-uncased)
 *   then      printable ASCII other than space and A-Z (the tokenizer lower-cases first, so
 *             capitals never reach the lookup), then "##" + each lower-case letter and digit
 *             (ASCII punctuation is always a word of its own, so it never continues one),
 *             then a few suffix pieces and a few hundred common English words.
 * Every word is spelled out by its letters at worst, so plain English never yields [UNK];
 * the size stays far below BERT-base's 30522 rows, so its ids index any BERT-base embedding table.
 */
import { CLS_TOKEN, MASK_TOKEN, PAD_TOKEN, SEP_TOKEN, UNK_TOKEN, Vocab } from "./vocab.js";

/** Rows of BERT-base's word-embedding table; the built-in vocab must fit in it. */
export const BERT_BASE_VOCAB_SIZE = 30522;

export const BUILTIN_VOCAB_SOURCE = "<builtin vocab>";

const UNUSED_TOKEN_COUNT = 99;

/** Continuation pieces for common English endings, so inflected words stay short. */
const SUFFIX_PIECES = ["##es", "##ed", "##ing", "##er", "##ers", "##ly", "##est", "##ion"];

/** Common English words, lower-case and accent-free, weighted toward video captions. */
const COMMON_WORDS = `
the of and to in is it that for on with as was at by an be this from are or have has had
not but what all were when we there can one they you he she his her its their them him i me my
our your who which will would do does did up out about into over after before under again then
than so if no yes just also only very more most some any each other such these those here where
why how both few many much own too could should may might must shall
a man woman men women person people boy girl child children baby kid kids family friend friends
player players team crowd group couple mother father son daughter brother sister teacher student
dog dogs cat cats horse bird birds fish cow sheep animal animals lion tiger bear elephant monkey
car cars bus truck bike bicycle train plane boat ship road street city town house home room
kitchen table chair bed door window wall floor water river lake sea ocean beach sand snow rain
tree trees grass flower flowers field park garden forest mountain hill sky sun light night day
morning evening time year years week minute second moment
ball game games music song songs guitar piano drum drums video clip camera picture screen phone
food cake pizza bread fruit apple egg eggs meat rice soup coffee tea milk
hand hands head face eye eyes hair arm arms leg legs foot feet body mouth
red blue green yellow black white brown orange pink purple gray
big small large little long short tall young old new good bad great best happy sad hot cold
first last next different front back left right top bottom side middle
play plays playing played dance dances dancing danced sing sings singing sang talk talks talking
walk walks walking walked run runs running ran jump jumps jumping jumped ride rides riding
swim swims swimming throw throws throwing catch catches catching kick kicks kicking hit hits
cook cooks cooking cut cuts cutting eat eats eating drink drinks drinking drive drives driving
sit sits sitting stand stands standing look looks looking watch watches watching show shows
showing hold holds holding put puts putting take takes taking make makes making made give gives
giving get gets getting go goes going went come comes coming came see sees seeing saw
open opens opening close closes closing move moves moving turn turns turning use uses using
wear wears wearing speak speaks speaking tell tells telling explain explains explaining
climb climbs climbing fall falls falling fly flies flying push pushes pushing pull pulls pulling
laugh laughs laughing smile smiles smiling wave waves waving paint paints painting draw draws
drawing write writes writing read reads reading fix fixes fixing build builds building
shirt dress hat shoes jacket coat glasses
while during through across along around near behind between inside outside above below down off
together away toward towards onto upon against without within
two three four five six seven eight nine ten hundred
news sport sports soccer football basketball tennis baseball golf race match stage concert
performance film movie scene story cartoon tv television computer
something someone everything everyone nothing way thing things part place world life
work job school class lesson word words name number line
`;

function printableAsciiTokens(): string[] {
  const tokens: string[] = [];
  for (let cp = 0x21; cp <= 0x7e; cp += 1) {
    const char = String.fromCharCode(cp);
    if (char >= "A" && char <= "Z") continue;
    tokens.push(char);
  }
  return tokens;
}

function continuationCharTokens(): string[] {
  const chars = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(chars, (char) => `##${char}`);
}

/** The word list in order (Vocab.fromTokens rejects a word listed twice). */
function commonWords(): string[] {
  return COMMON_WORDS.split(/\s+/).filter((word) => word !== "");
}

/** Token strings of the built-in vocab in id order. */
export function builtinVocabTokens(): string[] {
  const unused = Array.from({ length: UNUSED_TOKEN_COUNT }, (_, i) => `[unused${i}]`);
  const head = [PAD_TOKEN, ...unused, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN];
  const pieces = [...printableAsciiTokens(), ...continuationCharTokens(), ...SUFFIX_PIECES];
  // "a" and "i" are words and also single-character pieces; list them once.
  const alreadyListed = new Set(pieces);
  const words = commonWords().filter((word) => !alreadyListed.has(word));
  return [...head, ...pieces, ...words];
}

let cached: Vocab | undefined;

/** The built-in stand-in vocab (see the header: not bert-base-uncased's ids). */
export function builtinVocab(): Vocab {
  cached ??= Vocab.fromTokens(builtinVocabTokens(), BUILTIN_VOCAB_SOURCE);
  return cached;
}
