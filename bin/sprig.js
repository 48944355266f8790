#!/usr/bin/env node
// sprig's command line: the compiled CLI (dist/, built by `npm run build`), run by plain node.
// src/cli/main.js starts the program itself when the process was launched as `sprig`.
import { existsSync } from "node:fs";

const main = new URL("../dist/src/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    "sprig: the compiled CLI (dist/src/cli/main.js) is missing: run `npm run build` in the sprig checkout\n",
  );
  process.exit(2);
}
await import(main.href);
