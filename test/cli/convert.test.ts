import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { referenceBackend } from "../../backends/reference/index.js";
import { runCase } from "../../src/api/conformance.js";
import { loadCase } from "../../src/conformance/case.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { expectUserError, SHARED, sprigTsx } from "../support/cli.js";
import { K1_CONFIG } from "../support/k1.js";

/**
 * `sprig convert` on the released-checkpoint fixtures (../shared/conformance/inputs): the
 * converted tensors follow checkpoints.json's rules exactly, the retrieval model run from
 * the converted f32 file passes the k1 case, and malicious or ill-fitting files are refused
 * with one message, exit 1 and no output file.
 */
const INPUTS = join(SHARED, "conformance/inputs");
const K1 = join(SHARED, "conformance/video-text/k1_retrieval_pixels.json");

interface Entry {
  readonly dtype: string;
  readonly shape: number[];
  readonly rule: "exact" | "fp16_rne";
}

/** float16 round-to-nearest-even of a float32 value, written from the definition. */
function toHalf(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const exponent = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const ulp = 2 ** (exponent - 10);
  const q = x / ulp; // exact: x has 24 significant bits, ulp is a power of two
  const floor = Math.floor(q);
  const rest = q - floor;
  const n = rest > 0.5 ? floor + 1 : rest < 0.5 ? floor : floor % 2 === 0 ? floor : floor + 1;
  const y = n * ulp;
  return Math.abs(y) > 65504 ? Math.sign(y) * Number.POSITIVE_INFINITY : y;
}

let tmp: string;
let config: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sprig-convert-"));
  config = join(tmp, "k1.json");
  await writeFile(config, JSON.stringify(K1_CONFIG));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function rules(file: string): Promise<Record<string, Entry>> {
  const json = JSON.parse(await readFile(join(INPUTS, "checkpoints.json"), "utf8"));
  return json.files[file].model;
}

describe.each([
  ["k1_checkpoint.pth", "f32"],
  ["k1_checkpoint_fp16.pth", "f32"],
  ["k1_checkpoint_legacy.pth", "f32"],
  ["k1_checkpoint.pth", "f16"],
])("sprig convert %s --dtype %s", (file, dtype) => {
  it("yields every state_dict entry as checkpoints.json's rule says", async () => {
    const out = join(tmp, `${file}.${dtype}.safetensors`);
    const run = await sprigTsx([
      "convert",
      join(INPUTS, file),
      "--out",
      out,
      "--config",
      config,
      "--dtype",
      dtype,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const converted = (await readSafetensors(out)).tensors;
    const k1 = (await loadCase(K1)).tensors;
    const entries = await rules(file);
    expect(converted.size).toBe(Object.keys(entries).length);
    for (const [key, entry] of Object.entries(entries)) {
      const got = converted.get(key);
      expect(got, key).toBeDefined();
      expect(got!.shape).toEqual(entry.shape);
      const want = k1.get(key)!;
      const halfStored = dtype === "f16" && entry.dtype !== "int64";
      const rule = halfStored ? "fp16_rne" : entry.rule;
      for (let i = 0; i < want.data.length; i++) {
        const expected = rule === "exact" ? want.data[i]! : toHalf(want.data[i]!);
        if (got!.data[i] !== expected) {
          expect.fail(`${key}[${i}]: ${got!.data[i]} != ${expected} (${rule})`);
        }
      }
    }
  });
});

describe("the converted checkpoint runs the whole model", () => {
  it("passes the k1 case with the weights read back from the converted file", async () => {
    const out = join(tmp, "k1-run.safetensors");
    const run = await sprigTsx([
      "convert",
      join(INPUTS, "k1_checkpoint.pth"),
      "--out",
      out,
      "--config",
      config,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const testCase = await loadCase(K1);
    const converted = (await readSafetensors(out)).tensors;
    const tensors = new Map(testCase.tensors);
    let replaced = 0;
    for (const [name] of testCase.tensors) {
      if (testCase.specs.get(name)?.role !== "weight") continue;
      tensors.set(name, converted.get(name)!);
      replaced += 1;
    }
    expect(replaced).toBeGreaterThan(150);
    const result = await runCase({ ...testCase, tensors }, referenceBackend);
    expect(result.checks.filter((c) => !c.passed).map((c) => c.detail)).toEqual([]);
    expect(result.passed).toBe(true);
  });

  it("keeps the checkpoint's plain data in __metadata__", async () => {
    const out = join(tmp, "k1-meta.safetensors");
    await sprigTsx([
      "convert",
      join(INPUTS, "k1_checkpoint.pth"),
      "--out",
      out,
      "--config",
      config,
    ]);
    const { metadata } = await readSafetensors(out);
    expect(metadata.epoch).toBe("3");
    expect(metadata.global_step).toBe("120");
    expect(JSON.parse(metadata.config!).video_input.num_frames).toBe(2);
  });
});

describe("checkpoints across clip lengths", () => {
  it("runs the 2-frame k1 vision encoder at 4 frames, saying which tables were interpolated", async () => {
    const vision = join(tmp, "k1-vision-4f.json");
    await writeFile(vision, JSON.stringify({ ...K1_CONFIG.vision, frames: 4, batch: 1 }));
    const run = await sprigTsx([
      "run",
      "--model",
      "vision",
      "--config",
      vision,
      "--weights",
      join(INPUTS, "k1_checkpoint.pth"),
      "--backend",
      "reference",
      "--reps",
      "1",
      "--json",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const weights = JSON.parse(run.stdout).weights;
    // the checkpoint's config says 2 frames: window (2,4,4) -> (4,4,4) in each of 3 layers
    const tables = weights.adapted.filter((a: { how: string }) => a.how === "temporal-nearest");
    expect(tables).toHaveLength(3);
    expect(tables[0].from).toEqual([150, 4]);
    expect(tables[0].to).toEqual([7 * 7 * 7 + 3, 4]);
    expect(weights.prefixes).toEqual(["vision_encoder."]);
  });
});

describe("bad checkpoints: one message, exit 1, no output file", () => {
  it.each([
    ["malicious.pth", "posix.system"],
    ["malicious_stack_global.pth", "builtins.eval"],
  ])("%s is refused naming %s", async (file, global) => {
    const out = join(tmp, `${file}.safetensors`);
    const message = expectUserError(
      await sprigTsx(["convert", join(INPUTS, file), "--out", out, "--config", config]),
      global,
      "not allowed",
    );
    expect(message).toContain(file);
    expect(existsSync(out)).toBe(false);
  });

  it("a missing file", async () => {
    const out = join(tmp, "missing.safetensors");
    expectUserError(
      await sprigTsx(["convert", join(tmp, "nope.pth"), "--out", out]),
      "nope.pth",
      "ENOENT",
    );
    expect(existsSync(out)).toBe(false);
  });

  it("a file that is not a checkpoint", async () => {
    const path = join(tmp, "notes.pth");
    await writeFile(path, "these are my notes, not a checkpoint\n");
    const out = join(tmp, "notes.safetensors");
    expectUserError(await sprigTsx(["convert", path, "--out", out]), "notes.pth");
    expect(existsSync(out)).toBe(false);
  });

  it("a state_dict that does not fit the model names the key and both shapes", async () => {
    // the default preset is BEiT-base + BERT-base; k1 is a small model
    const out = join(tmp, "misfit.safetensors");
    const message = expectUserError(
      await sprigTsx(["convert", join(INPUTS, "k1_checkpoint.pth"), "--out", out]),
      '"vision_encoder.embeddings.cls_token" is [1,1,64], the model needs [1,1,768]',
    );
    expect(message).toContain("--config");
    expect(existsSync(out)).toBe(false);
  });

  it("an unknown --dtype", async () => {
    expectUserError(
      await sprigTsx([
        "convert",
        join(INPUTS, "k1_checkpoint.pth"),
        "--out",
        join(tmp, "x.safetensors"),
        "--dtype",
        "f8",
      ]),
      '"dtype"',
    );
  });
});
