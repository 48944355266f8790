/** sprig's version (package.json "version"; test/package/entries.test.ts keeps them equal). */
export const VERSION = "0.1.0";
