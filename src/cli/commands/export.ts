import type { Command } from "commander";
import { exportOnnx, OPSET } from "../../../backends/onnx/index.js";
import { compileWithinBudget } from "../../api/run.js";
import { parseIntOption } from "../../config/flags.js";
import { graphInputs } from "../../ir/graph.js";
import { formatType } from "../../ir/tensor.js";
import { checkMemoryBudget, storedOnly } from "../../memory.js";
import { modelByName } from "../../models/index.js";
import { initWeights } from "../../models/init.js";
import { bindWeightFile, readWeightFile, summarizeWeightLoad } from "../../runtime/weight-file.js";
import {
  addMemoryOption,
  addModelOptions,
  chosenModel,
  type ModelFlags,
  memoryBudget,
  specFromFlags,
  withConfigArgument,
} from "../spec-options.js";
import { weightFileMemory } from "./run.js";

type ExportFlags = ModelFlags & {
  readonly onnx?: string;
  readonly weightSeed?: string;
  readonly weights?: string;
  readonly portable?: boolean;
  readonly maxMemory?: string;
};

const SEEDS = { min: 0, max: 2 ** 32 - 1 } as const;

function megabytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * `sprig export --onnx FILE [--model NAME] [model options]`: compiles a model like
 * `report` and writes it as one ONNX model with its weights (--weights FILE, else seeded
 * synthetic ones, initWeights), atomically: a failed write leaves no file. Prints the
 * path, the size and the model's signature.
 */
export function registerExport(program: Command): void {
  const command = addModelOptions(
    program
      .command("export")
      .argument("[config]", "JSON model config (same as --config)")
      .description("compile a model and write it as an ONNX model with its weights")
      .requiredOption("--onnx <file>", "where to write the ONNX model")
      .option("--weights <file>", "weights: safetensors or a PyTorch .pth (default: seeded)")
      .option("--weight-seed <n>", "seed of the synthetic weights (default 0)")
      .option(
        "--portable",
        "standard ONNX ops only (by default attention uses onnxruntime's MultiHeadAttention)",
      ),
  );
  addMemoryOption(command).action(async (config: string | undefined, given: ExportFlags) => {
    const flags = withConfigArgument(config, given);
    const path = flags.onnx!;
    const seed = parseIntOption("--weight-seed", "weightSeed", flags.weightSeed, SEEDS, 0);
    const model = modelByName(chosenModel(flags));
    const spec = await specFromFlags(model, flags);
    const { compiled, memory } = compileWithinBudget(model, spec);
    // Before any weight exists. Export runs nothing: it holds the weights, the ONNX model
    // that copies them and the weights file as read.
    checkMemoryBudget(storedOnly(memory), memoryBudget(flags), model.describe(spec), [
      { what: "the ONNX model as built", bytes: memory.weightBytes },
      ...(await weightFileMemory(flags.weights)),
    ]);
    const { graph } = compiled;
    let weights = initWeights(graph, seed);
    let weightsNote = `weights seed ${seed}`;
    if (flags.weights !== undefined) {
      const bound = bindWeightFile(
        graph,
        await readWeightFile(flags.weights),
        model.checkpointPrefix,
      );
      weights = bound.weights;
      weightsNote = summarizeWeightLoad(bound.report);
    }
    const bytes = await exportOnnx(graph, weights, path, { portable: flags.portable === true });
    const inputs = graphInputs(graph)
      .map((n) => `${n.attrs.name} ${formatType(n.attrs.type)}`)
      .join(", ");
    const outputs = graph.outputs.map((o) => o.name).join(", ");
    const lines = [
      `wrote ${path} (${megabytes(bytes)}, ${bytes} bytes)`,
      `  ONNX opset ${OPSET}${flags.portable ? ", standard ops only" : ", com.microsoft MultiHeadAttention"}; ${weightsNote}`,
      `  inputs: ${inputs}`,
      `  outputs: ${outputs}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  });
}
