import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { type BundleResult, buildBrowserBundle } from "./build.js";
import type { SprigGlobals } from "./protocol.js";
import { type RunningServer, startServer } from "./server.js";

/**
 * A browser session on the page, for the browser test suite and the browser benchmark:
 * build the bundle, serve it with the conformance cases, launch Debian's Chromium through
 * playwright-core (never a downloaded browser) with WebGL2 on SwiftShader, and open pages.
 */

/** CI installs Debian's chromium (apt-get install -y chromium); override with SPRIG_CHROMIUM. */
export const CHROMIUM = process.env.SPRIG_CHROMIUM ?? "/usr/bin/chromium";

/**
 * Headless Chromium with WebGL2 on ANGLE's SwiftShader (software Vulkan): the flags the
 * platform notes list, plus the GL selection. All software rendering: for correctness, not
 * speed.
 */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--headless",
  "--use-gl=angle",
  "--use-angle=swiftshader",
  "--enable-unsafe-swiftshader",
];

export interface BrowserSession {
  readonly bundle: BundleResult;
  readonly server: RunningServer;
  readonly browser: Browser;
  /** Console lines and page errors of every page opened, newest last. */
  readonly log: string[];
  /**
   * Opens the page with `query` and waits until it is ready for calls, or with
   * `waitReady: false` only until it has loaded (a page that starts heavy work at once,
   * such as the benchmark mode, may not answer a readiness poll for minutes).
   */
  open(query: string, options?: { readonly waitReady?: boolean }): Promise<Page>;
  close(): Promise<void>;
}

/** Fails (never skips) when Chromium is missing. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the browser tests need Debian's Chromium (apt-get install -y chromium), or SPRIG_CHROMIUM naming another Chromium binary; they never download a browser`,
    );
  }
}

export async function startSession(): Promise<BrowserSession> {
  requireChromium();
  const bundle = await buildBrowserBundle();
  const server = await startServer();
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  } catch (error) {
    await server.close();
    throw error;
  }
  const log: string[] = [];
  return {
    bundle,
    server,
    browser,
    log,
    open: async (query, options = {}) => {
      const page = await browser.newPage();
      page.on("console", (message) => log.push(`console.${message.type()}: ${message.text()}`));
      page.on("pageerror", (error) => log.push(`pageerror: ${error.message}`));
      await page.goto(`${server.url}${query}`);
      if (options.waitReady === false) return page;
      await page.waitForFunction(
        () => (globalThis as SprigGlobals).__sprigResults?.ready === true,
        null,
        { timeout: 60_000 },
      );
      return page;
    },
    close: async () => {
      await browser.close();
      await server.close();
    },
  };
}
