#!/usr/bin/env node
/**
 * `npm run build:demo`: bundles the demo app (public/src/demo.ts, which imports
 * the client SDK from src/client) into public/app.js with esbuild (already
 * installed as wrangler's dependency). The bundle is generated, gitignored
 * (public/.gitignore) and rebuilt by `npm start` and the e2e runner.
 *
 * Flags: --watch rebuilds on change; --check also typechecks the demo and the
 * SDK against the DOM lib (tsc -p public).
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));

if (args.has("--check")) {
  const tsc = spawnSync(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", join(ROOT, "public", "tsconfig.json")], { stdio: "inherit" });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
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
};

if (args.has("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log("build-demo: watching public/src and src/client");
} else {
  const started = Date.now();
  await esbuild.build(options);
  console.log(`build-demo: public/app.js built in ${Date.now() - started} ms`);
}
