import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runReference, referenceBackend } from "../../backends/reference/index.js";
import { sparsifyAttention } from "../../passes/sparsify-attention.js";
import { runCase } from "../../src/api/conformance.js";
import { CaseError, type ConformanceCase, loadCase } from "../../src/conformance/case.js";
import { compareTensors } from "../../src/conformance/compare.js";
import { beitConfigFromReference } from "../../src/conformance/reference-config.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { SprigError } from "../../src/ir/errors.js";
import type { PaddingMode } from "../../src/ir/pattern.js";
import { f32Tensor, type HostTensor } from "../../src/ir/tensor.js";
import { beitSelfAttention, identityTokenIndex } from "../../src/models/beit.js";
import { runPasses } from "../../src/pass-manager.js";

const DIR = fileURLToPath(new URL("../../../shared/conformance/", import.meta.url));
const caseFile = (name: string) => join(DIR, `${name}.json`);

// Every case of the folder on every backend (the reference included), and the folder's
// presence with every known case: test/conformance/every-backend.test.ts.

/** `testCase` with one tensor replaced. */
function withTensor(testCase: ConformanceCase, name: string, tensor: HostTensor): ConformanceCase {
  const tensors = new Map(testCase.tensors);
  tensors.set(name, tensor);
  return { ...testCase, tensors };
}

function perturbed(tensor: HostTensor, index: number, delta: number): HostTensor {
  const data = Float32Array.from(tensor.data);
  data[index]! += delta;
  return f32Tensor(tensor.shape, data);
}

describe("the comparison can fail", () => {
  it("a slightly perturbed value bias makes b2 fail on expected.context", async () => {
    const b2 = await loadCase(caseFile("b2_selfattn_sparse_rpb_pad"));
    expect((await runCase(b2, referenceBackend)).passed).toBe(true);
    const bias = b2.tensors.get("value.bias")!;
    const result = await runCase(
      withTensor(b2, "value.bias", perturbed(bias, 0, 1e-3)),
      referenceBackend,
    );
    expect(result.passed).toBe(false);
    const failed = result.checks.filter((c) => !c.passed).map((c) => c.name);
    expect(failed).toContain("expected.context");
    // the value bias does not enter the CLS probabilities
    expect(failed).not.toContain("expected.cls_attention_probs");
  });

  it("a perturbed query weight makes b2 fail on the attention outputs", async () => {
    const b2 = await loadCase(caseFile("b2_selfattn_sparse_rpb_pad"));
    const weight = b2.tensors.get("query.weight")!;
    const result = await runCase(
      withTensor(b2, "query.weight", perturbed(weight, 0, 0.05)),
      referenceBackend,
    );
    expect(result.passed).toBe(false);
    expect(result.checks.filter((c) => !c.passed).map((c) => c.name)).toContain("expected.context");
  });

  it("b2 fails with padding masked and passes with padding reference", async () => {
    // Rebuilt by hand: BeitSelfAttention (window 3x4x4, 48 tokens) + sparsify-attention with
    // b2's own random blocks, block 10 -> 5 blocks, the last one padded by 2.
    const b2 = await loadCase(caseFile("b2_selfattn_sparse_rpb_pad"));
    const config = beitConfigFromReference(b2.module!.config);
    const hidden = b2.tensors.get("input.hidden_states")!;
    const pattern = b2.tensors.get("pattern.random_block_idx")!;
    const randomRows = Array.from({ length: pattern.shape[0]! }, (_, r) =>
      Array.from(pattern.data.subarray(r * pattern.shape[1]!, (r + 1) * pattern.shape[1]!)),
    );
    const weights = new Map<string, HostTensor>();
    for (const [name, spec] of b2.specs)
      if (spec.role === "weight") weights.set(name, b2.tensors.get(name)!);
    const contextWith = (padding: PaddingMode) => {
      const b = new GraphBuilder("b2");
      const x = b.input("hidden_states", { dtype: "f32", shape: hidden.shape }, "encoderInput");
      const idx = identityTokenIndex(b, hidden.shape[1]! - 1);
      const attention = b.inLayer(0, () => beitSelfAttention(b, x, config, idx, [3, 4, 4]));
      b.output("context", attention.context);
      const pass = sparsifyAttention({
        pattern: {
          kind: "svitt",
          blockSize: 10,
          local: 1,
          random: 3,
          seed: 0,
          perHead: false,
          randomBlocks: new Map([[0, randomRows]]),
        },
        padding,
      });
      const graph = runPasses(b.build(), [pass], { debug: 0 }).graph;
      return runReference(graph, weights, { hidden_states: hidden }).context!;
    };
    const want = b2.tensors.get("expected.context")!;
    const tolerance = b2.specs.get("expected.context")!.tolerance as { atol: number; rtol: number };
    expect(tolerance).toEqual({ atol: 1e-6, rtol: 1e-4 });
    expect(
      compareTensors("expected.context", contextWith("reference"), want, tolerance).passed,
    ).toBe(true);
    const masked = compareTensors("expected.context", contextWith("masked"), want, tolerance);
    expect(masked.passed).toBe(false);
    expect(masked.maxAbsError).toBeGreaterThan(1e-4);
  });
});

describe("broken cases", () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "sprig-conformance-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("a sidecar that is not JSON is a CaseError naming the file", async () => {
    const path = join(tmp, "bad_json.json");
    await writeFile(path, "{ not json");
    await copyFile(
      join(DIR, "b1_selfattn_sparse_rpb_div.safetensors"),
      join(tmp, "bad_json.safetensors"),
    );
    const error = await loadCase(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaseError);
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toContain("not valid JSON");
  });

  it("a sidecar without tensors is a CaseError", async () => {
    const path = join(tmp, "no_tensors.json");
    await writeFile(path, JSON.stringify({ module_spec: { kind: "BeitLayer", config: {} } }));
    const error = await loadCase(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaseError);
    expect((error as Error).message).toContain('missing "tensors"');
  });

  it("a missing sidecar is a CaseError", async () => {
    const error = await loadCase(join(tmp, "nothing.json")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaseError);
    expect((error as Error).message).toContain("ENOENT");
  });

  it("a missing .safetensors is a SprigError naming the file", async () => {
    const path = join(tmp, "lonely.json");
    await copyFile(caseFile("b1_selfattn_sparse_rpb_div"), path);
    const error = await loadCase(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SprigError);
    expect((error as Error).message).toContain(join(tmp, "lonely.safetensors"));
  });

  it("a truncated .safetensors is a SprigError naming the file", async () => {
    const path = join(tmp, "short.json");
    await copyFile(caseFile("b1_selfattn_sparse_rpb_div"), path);
    const bytes = await readFile(join(DIR, "b1_selfattn_sparse_rpb_div.safetensors"));
    await writeFile(join(tmp, "short.safetensors"), bytes.subarray(0, bytes.length - 100));
    const error = await loadCase(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SprigError);
    expect((error as Error).message).toContain("short.safetensors");
  });

  it("a sidecar listing a tensor the file lacks is a CaseError naming the tensor", async () => {
    const path = join(tmp, "extra.json");
    const sidecar = JSON.parse(await readFile(caseFile("b1_selfattn_sparse_rpb_div"), "utf8"));
    sidecar.tensors["ghost.weight"] = { role: "weight" };
    await writeFile(path, JSON.stringify(sidecar));
    await copyFile(
      join(DIR, "b1_selfattn_sparse_rpb_div.safetensors"),
      join(tmp, "extra.safetensors"),
    );
    const error = await loadCase(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaseError);
    expect((error as Error).message).toContain('"ghost.weight"');
  });

  it("an unsupported module kind fails the case with an error instead of throwing", async () => {
    const b1 = await loadCase(caseFile("b1_selfattn_sparse_rpb_div"));
    const result = await runCase(
      { ...b1, module: { ...b1.module!, kind: "BeitPooler" } },
      referenceBackend,
    );
    expect(result.passed).toBe(false);
    expect(result.error).toContain('unsupported module kind "BeitPooler"');
  });

  it("a missing weight fails the case with the weight's name", async () => {
    const b1 = await loadCase(caseFile("b1_selfattn_sparse_rpb_div"));
    const tensors = new Map(b1.tensors);
    tensors.delete("key.weight");
    const result = await runCase({ ...b1, tensors }, referenceBackend);
    expect(result.passed).toBe(false);
    expect(result.error).toContain('missing weight "key.weight"');
  });
});
