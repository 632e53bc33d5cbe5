#!/usr/bin/env node
/**
 * `npm run build:demo`: bundles the demo app (public/src/demo.ts, which imports
 * the client SDK from src/client) into public/app.js with esbuild (already
 * installed as wrangler's dependency). The bundle is generated, gitignored
 * (public/.gitignore) and rebuilt by `npm start` and the e2e runner.
 *
 * public/app.js and its source map are written only when their content changes:
 * `wrangler dev` watches public/, and a rewrite of identical bytes would still
 * reload a running server and drop its sockets.
 *
 * Flags: --watch rebuilds on change; --check also typechecks the demo and the
 * SDK against the DOM lib (tsc -p public).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));

if (args.has("--check")) {
  const tsc = spawnSync(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", join(ROOT, "public", "tsconfig.json")], { stdio: "inherit" });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}

/** Writes each output file whose bytes differ from what is on disk; returns the paths written. */
function writeChanged(outputFiles) {
  const written = [];
  for (const file of outputFiles) {
    let current = null;
    try {
      current = readFileSync(file.path);
    } catch {
      // not built yet
    }
    if (current !== null && Buffer.compare(current, file.contents) === 0) continue;
    writeFileSync(file.path, file.contents);
    written.push(relative(ROOT, file.path));
  }
  return written;
}

const options = {
  entryPoints: [join(ROOT, "public", "src", "demo.ts")],
  outfile: join(ROOT, "public", "app.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  sourcemap: true,
  logLevel: "warning",
  legalComments: "none",
  write: false,
};

if (args.has("--watch")) {
  const report = {
    name: "write-if-changed",
    setup(build) {
      build.onEnd((result) => {
        const written = result.outputFiles ? writeChanged(result.outputFiles) : [];
        if (written.length > 0) console.log(`build-demo: wrote ${written.join(", ")}`);
      });
    },
  };
  const ctx = await esbuild.context({ ...options, plugins: [report] });
  await ctx.watch();
  console.log("build-demo: watching public/src and src/client");
} else {
  const started = Date.now();
  const result = await esbuild.build(options);
  const written = writeChanged(result.outputFiles);
  console.log(`build-demo: public/app.js ${written.length > 0 ? "built" : "unchanged, not rewritten"} in ${Date.now() - started} ms`);
}
