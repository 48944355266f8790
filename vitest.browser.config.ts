import { defineConfig } from "vitest/config";

/**
 * `npm run test:browser`: only the browser suite (test/browser), which builds the page
 * bundle and drives Debian's Chromium (WebGL2 on SwiftShader) with playwright-core. The
 * default config (vitest.config.ts) runs it too, with everything else.
 */
export default defineConfig({
  test: {
    include: ["test/browser/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: "forks",
  },
});
