import { Command, CommanderError } from "commander";
import { handleInterrupts } from "../io/cleanup.js";
import { ConfigError, SprigError } from "../ir/errors.js";
import { registerConvert } from "./commands/convert.js";
import { registerEmit } from "./commands/emit.js";
import { registerExplore } from "./commands/explore.js";
import { registerExport } from "./commands/export.js";
import { registerPattern } from "./commands/pattern.js";
import { registerPreprocess } from "./commands/preprocess.js";
import { registerCompile, registerReport } from "./commands/report.js";
import { registerEmbed, registerRetrieve } from "./commands/retrieve.js";
import { registerBench, registerRun } from "./commands/run.js";
import { registerVerify } from "./commands/verify.js";
import { addHelpText, EXIT } from "./help.js";
import { VERSION } from "../version.js";

/**
 * sprig's command line. Every user error (bad flags, bad files, failed checks) ends with
 * one message on stderr and exit status 1; anything else is a bug in sprig, reported with
 * its stack trace and exit status 2 (EXIT in help.ts, documented in every --help).
 */
export function buildProgram(): Command {
  const program = new Command("sprig")
    .description(
      "A graph compiler for sparse video-text transformers (SViTT): prune edges and nodes, then lower to kernels.",
    )
    .version(VERSION, "-V, --version", "print sprig's version")
    // Commander's own errors (unknown option, missing argument) as one "sprig: ..." line,
    // like every other user error; subcommands inherit this.
    .configureOutput({
      outputError: (text, write) =>
        write(`sprig: ${text.replace(/^error: /, "").trim()} (run sprig --help for usage)\n`),
    })
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
  registerPattern(program);
  registerExplore(program);
  registerVerify(program);
  registerExport(program);
  registerEmit(program);
  addHelpText(program);
  return program;
}

/** Runs the command line `argv` (without node and the script) and returns its exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  program.hook("preAction", (command) => {
    const level = command.opts().debug as string | undefined;
    if (level !== undefined) {
      if (!/^[0-3]$/.test(level)) {
        throw new ConfigError("debug", `must be 0, 1, 2 or 3, got "${level}"`);
      }
      process.env.SPRIG_DEBUG = level;
    }
    // Test-only (README, "Exit status"): a bug stand-in, to check the internal-error path.
    if (process.env.SPRIG_TEST_INTERNAL_ERROR === "1")
      throw new Error("SPRIG_TEST_INTERNAL_ERROR=1: internal error raised on purpose");
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
      return EXIT.userError;
    }
    process.stderr.write(
      `sprig: internal error (this is a bug in sprig):\n${(error as Error).stack ?? String(error)}\n`,
    );
    return EXIT.internalError;
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && /(?:main\.ts|sprig(?:\.js)?)$/.test(process.argv[1]);
if (invokedDirectly) {
  // SIGINT / SIGTERM while a command writes: remove its partial outputs, exit 130 / 143.
  handleInterrupts();
  process.exitCode = await main(process.argv.slice(2));
}
