#!/usr/bin/env node
/**
 * `npm run build:client`: the client SDK as an installable package entry.
 *
 * - dist/client/index.js: src/client/index.ts bundled to one ESM file with its
 *   dependencies (zod) inlined, so an app that installs the package needs
 *   nothing else at run time, in browsers, Node 20 and bundlers alike.
 * - dist/client/node-file-storage.js: FileStorage for Node hosts, kept apart so
 *   browser bundles never see `node:` imports.
 * - dist/client/types/: declarations from src/client/tsconfig.json (the SDK's
 *   own project: DOM lib, src/client and src/protocol only), with `.js` on
 *   relative imports so NodeNext resolution finds them too.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "dist", "client");
const started = Date.now();

rmSync(OUT, { recursive: true, force: true });

await esbuild.build({
  entryPoints: {
    index: join(ROOT, "src", "client", "index.ts"),
    "node-file-storage": join(ROOT, "src", "client", "node-file-storage.ts"),
  },
  outdir: OUT,
  bundle: true,
  format: "esm",
  // Neither browser nor Node: the SDK only uses what both have (fetch, WebSocket, crypto, TextEncoder).
  platform: "neutral",
  mainFields: ["module", "main"],
  target: "es2022",
  // Shipped minified with a source map: apps debug against the TypeScript sources.
  minify: true,
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
});

const tsc = spawnSync(
  join(ROOT, "node_modules", ".bin", "tsc"),
  ["-p", join(ROOT, "src", "client", "tsconfig.json"), "--noEmit", "false", "--declaration", "--emitDeclarationOnly", "--outDir", join(OUT, "types")],
  { stdio: "inherit" },
);
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

// Node's ESM resolution (TypeScript's NodeNext) needs file extensions on relative imports; tsc keeps them as written.
for (const file of readdirSync(join(OUT, "types"), { recursive: true })) {
  if (!file.endsWith(".d.ts")) continue;
  const path = join(OUT, "types", file);
  const text = readFileSync(path, "utf8");
  writeFileSync(path, text.replace(/(from |import\()"(\.{1,2}\/[^"]+?)(?<!\.js)"/g, '$1"$2.js"'));
}

console.log(`build-client: dist/client built in ${Date.now() - started} ms`);
