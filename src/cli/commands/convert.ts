import type { Command } from "commander";
import { compileModel } from "../../api/compile.js";
import { float32ToFloat16Bits } from "../../io/half.js";
import { type StoredTensor, writeSafetensors } from "../../io/safetensors.js";
import {
  readTorchStateDict,
  type TorchTensor,
  torchTensorToHost,
} from "../../io/torch-checkpoint.js";
import { ConfigError, WeightError } from "../../ir/errors.js";
import { nodesOf } from "../../ir/graph.js";
import { formatShape } from "../../ir/tensor.js";
import { type ModelName, modelByName } from "../../models/index.js";
import { isDerivedBuffer } from "../../runtime/weight-file.js";
import { addModelOptions, chosenModel, type ModelFlags, specFromFlags } from "../spec-options.js";

/**
 * `sprig convert CHECKPOINT.pth --out MODEL.safetensors [--model retrieval|vision|text]
 * [--dtype f32|f16]`: a released PyTorch checkpoint (never executed: see
 * src/io/torch-checkpoint.ts) to safetensors with the entries the chosen model uses, as
 * load_state_dict(strict=False) would see them: the state_dict is found at the top level
 * or under "model" / "state_dict"; a key K of the model is taken from K or from the model's
 * checkpoint prefix + K (written as K); derived buffers of the model's modules
 * (relative_position_index, position_ids) are kept as they are. Keys the model does not
 * use and keys it needs but the checkpoint lacks are reported; a key present with another
 * shape is an error, except relative-position tables, which loading interpolates to the
 * compiled clip length. Floats become float32, or float16 with --dtype f16; int64 buffers
 * stay int64. The checkpoint's plain data (epoch, config, ...) goes into __metadata__ as JSON.
 */
const CONVERTIBLE: readonly ModelName[] = ["retrieval", "vision", "text"];

/** Keys of the retrieval model's state_dict that sprig's graphs do not compute with. */
const KNOWN_UNUSED = new Set(["temp"]);

type ConvertFlags = ModelFlags & { out: string; dtype?: string; json?: boolean };

function stored(
  tensor: TorchTensor,
  dtype: "f32" | "f16",
  file: string,
  key: string,
): StoredTensor {
  if (tensor.dtype === "i64" || tensor.dtype === "i32") return torchTensorToHost(tensor, file, key);
  if (dtype === "f16") {
    if (tensor.dtype === "f16")
      return { dtype: "F16", shape: tensor.shape, data: tensor.data as Uint16Array };
    const bits = float32ToFloat16Bits(torchTensorToHost(tensor, file, key).data as Float32Array);
    return { dtype: "F16", shape: tensor.shape, data: bits };
  }
  return torchTensorToHost(tensor, file, key);
}

export function registerConvert(program: Command): void {
  addModelOptions(
    program
      .command("convert")
      .argument(
        "<checkpoint>",
        "a PyTorch checkpoint (.pth, zip or legacy format) as torch.save writes it",
      )
      .description("convert a PyTorch checkpoint to safetensors with the entries a model uses")
      .requiredOption("--out <file>", "where to write the safetensors file")
      .option("--dtype <type>", "float storage: f32 (default) or f16", "f32")
      .option("--json", "print the conversion report as one JSON object"),
    CONVERTIBLE,
  ).action(async (checkpoint: string, flags: ConvertFlags) => {
    const name = chosenModel(flags, CONVERTIBLE);
    if (flags.dtype !== "f32" && flags.dtype !== "f16") {
      throw new ConfigError("dtype", `must be f32 or f16, got "${flags.dtype}"`);
    }
    const dtype = flags.dtype;
    const model = modelByName(name);
    const { graph } = compileModel(model, await specFromFlags(model, flags, CONVERTIBLE));
    const stateDict = await readTorchStateDict(checkpoint);
    const source = stateDict.tensors;
    const prefix = model.checkpointPrefix;
    const out = new Map<string, StoredTensor>();
    const taken = new Set<string>();
    const missing: string[] = [];
    const misShaped: string[] = [];
    const take = (key: string, as: string) => {
      out.set(as, stored(source.get(key)!, dtype, checkpoint, key));
      taken.add(key);
    };
    for (const node of nodesOf(graph, "weight")) {
      const { name: key, type } = node.attrs;
      const found = source.has(key) ? key : source.has(prefix + key) ? prefix + key : null;
      if (found === null) {
        missing.push(key);
        continue;
      }
      const shape = source.get(found)!.shape;
      const shapeOk =
        shape.length === type.shape.length && shape.every((d, i) => d === type.shape[i]);
      if (!shapeOk && !key.endsWith("relative_position_bias_table")) {
        misShaped.push(
          `"${found}" is ${formatShape(shape)}, the model needs ${formatShape(type.shape)}`,
        );
        continue;
      }
      take(found, key);
    }
    // Derived buffers and known-but-unused keys of the model's own modules come along.
    const prefixed = prefix !== "" && [...taken].some((k) => k.startsWith(prefix));
    for (const key of [...source.keys()]) {
      if (taken.has(key)) continue;
      const local = !prefixed ? key : key.startsWith(prefix) ? key.slice(prefix.length) : null;
      if (local === null) continue;
      if (name === "retrieval" && KNOWN_UNUSED.has(local)) {
        take(key, local);
      } else if (isDerivedBuffer(local)) {
        const owner = local.replace(/\.?(relative_position_index|position_ids)$/, "");
        if ([...out.keys()].some((k) => k.startsWith(`${owner}.`))) take(key, local);
      }
    }
    if (misShaped.length > 0) {
      throw new WeightError(
        `${checkpoint}: ${misShaped.length} entr${misShaped.length === 1 ? "y does" : "ies do"} not fit ${model.describe(await specFromFlags(model, flags, CONVERTIBLE))}: ${misShaped.slice(0, 6).join("; ")}${misShaped.length > 6 ? `; and ${misShaped.length - 6} more` : ""} (give the checkpoint's architecture with --config)`,
      );
    }
    if (out.size === 0) {
      throw new WeightError(
        `${checkpoint}: none of the ${model.name} model's weights are in its state_dict (looked up as K and ${prefix}K)`,
      );
    }
    const unused = [...source.keys()].filter((k) => !taken.has(k));
    const metadata: Record<string, string> = {
      format: "pt",
      source: checkpoint,
      model: name,
      state_dict: stateDict.location,
    };
    for (const [key, value] of Object.entries(stateDict.metadata)) {
      if (key === "optimizer" || key === "scheduler" || key === "scaler") continue;
      metadata[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    await writeSafetensors(flags.out, out, metadata);
    const report = {
      out: flags.out,
      model: name,
      dtype,
      state_dict: stateDict.location,
      written: out.size,
      missing,
      unused,
      metadata: Object.keys(metadata),
    };
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      return;
    }
    const lines = [
      `wrote ${flags.out}: ${out.size} tensors (${dtype}) of the ${name} model from ${checkpoint} (state_dict at ${stateDict.location})`,
    ];
    if (missing.length > 0) {
      lines.push(
        `  missing (the model needs them; loading will fail until they are given): ${missing.slice(0, 8).join(", ")}${missing.length > 8 ? `, and ${missing.length - 8} more` : ""}`,
      );
    }
    if (unused.length > 0) {
      lines.push(
        `  unused (not part of the ${name} model): ${unused.slice(0, 8).join(", ")}${unused.length > 8 ? `, and ${unused.length - 8} more` : ""}`,
      );
    }
    lines.push(`  metadata: ${Object.keys(metadata).join(", ")}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  });
}
