import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";

/**
 * vitest global set-up: gives the test run an X display when it has none and Debian's Xvfb
 * is installed (CI installs it), so that the gpujs tests also run gpu.js's headless-gl
 * engine (WebGL through ANGLE, see backends/gpujs/mode.ts). Workers inherit DISPLAY.
 * Without Xvfb nothing happens and those tests run on gpu.js's cpu and webasm engines only.
 */
const XVFB = "/usr/bin/Xvfb";

let server: ChildProcess | undefined;

export async function setup(): Promise<void> {
  if (process.env.DISPLAY || !existsSync(XVFB)) return;
  // -displayfd: Xvfb picks a free display and writes its number to fd 3 once it is ready.
  const xvfb = spawn(XVFB, ["-displayfd", "3", "-screen", "0", "640x480x24", "-nolisten", "tcp"], {
    stdio: ["ignore", "ignore", "ignore", "pipe"],
  });
  const display = await new Promise<string | null>((resolve) => {
    let text = "";
    const timer = setTimeout(() => resolve(null), 10_000);
    xvfb.stdio[3]!.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes("\n")) {
        clearTimeout(timer);
        resolve(text.trim());
      }
    });
    xvfb.on("exit", () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
  if (display === null) {
    xvfb.kill();
    process.stderr.write("test set-up: Xvfb did not start; gpujs tests run without gpu mode\n");
    return;
  }
  server = xvfb;
  process.env.DISPLAY = `:${display}`;
}

export async function teardown(): Promise<void> {
  server?.kill();
}
