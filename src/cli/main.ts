import { Command, CommanderError } from "commander";
import { SprigError } from "../ir/errors.js";
import { registerConvert } from "./commands/convert.js";
import { registerEmit } from "./commands/emit.js";
import { registerExport } from "./commands/export.js";
import { registerPreprocess } from "./commands/preprocess.js";
import { registerCompile, registerReport } from "./commands/report.js";
import { registerEmbed, registerRetrieve } from "./commands/retrieve.js";
import { registerBench, registerRun } from "./commands/run.js";
import { registerVerify } from "./commands/verify.js";

/**
 * sprig's command line. Every user error (bad flags, bad files, failed checks) ends with
 * one message on stderr and a non-zero exit; a stack trace means a bug in sprig.
 */
export function buildProgram(): Command {
  const program = new Command("sprig")
    .description(
      "A graph compiler for sparse video-text transformers (SViTT): prune edges and nodes, then lower to kernels.",
    )
    .showHelpAfterError("(run sprig --help for usage)")
    .option(
      "--debug <level>",
      "debug output on stderr: 1 pass timings, 2 graphs after passes, 3 kernel sources",
    );
  registerRun(program);
  registerRetrieve(program);
  registerEmbed(program);
  registerPreprocess(program);
  registerConvert(program);
  registerBench(program);
  registerReport(program);
  registerCompile(program);
  registerVerify(program);
  registerExport(program);
  registerEmit(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  program.hook("preAction", (command) => {
    const level = command.opts().debug as string | undefined;
    if (level !== undefined) process.env.SPRIG_DEBUG = level;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message (or help / version).
      return error.exitCode;
    }
    if (error instanceof SprigError) {
      process.stderr.write(`sprig: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(
      `sprig: internal error (this is a bug in sprig):\n${(error as Error).stack ?? String(error)}\n`,
    );
    return 70;
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && /(?:main\.ts|sprig(?:\.js)?)$/.test(process.argv[1]);
if (invokedDirectly) {
  process.exitCode = await main(process.argv.slice(2));
}
