#!/usr/bin/env node
/**
 * `npm run test:client-package`: proves that an app can install the client
 * SDK and use it. Builds dist/client, packs the package, installs the tarball
 * into a throwaway app (offline, from npm's cache), then:
 *   (a) Node 20 imports `offline-delivery/client` and `offline-delivery/client/node`,
 *       constructs a client and queues a message durably in a FileStorage;
 *   (b) the app's TypeScript typechecks against the shipped declarations
 *       (bundler and NodeNext resolution; the declarations must not need zod);
 *   (c) esbuild bundles the app for the browser, with no `node:` import left.
 * Prints what it checked; exits non-zero on the first failure.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(join(tmpdir(), "od-client-package-"));
const app = join(work, "app");

function run(cmd, args, cwd) {
  const res = spawnSync(cmd, args, { cwd, encoding: "utf8" });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${res.status}):\n${res.stdout}\n${res.stderr}`);
  return res.stdout;
}

function step(name, fn) {
  const started = Date.now();
  const detail = fn();
  console.log(`ok  ${name} (${Date.now() - started} ms)${detail ? `: ${detail}` : ""}`);
}

const APP_TS = `
import { formatReceipt, MemoryStorage, OfflineClient, type EntryBatch, type TokenProvider } from "offline-delivery/client";

const token: TokenProvider = async ({ forceRefresh }) => (forceRefresh ? "fresh" : "cached");
const client = new OfflineClient({ baseUrl: "https://chat.example", token, storage: new MemoryStorage(), socketFactory: null });
client.on("delivered", (batch: EntryBatch) => console.log(batch.messages.length));
client.on("receipt", (r) => console.log(formatReceipt(r)));
export const ready: Promise<void> = client.ready();
`;

const NODE_CHECK = `
import assert from "node:assert/strict";
import { OfflineClient, HttpError, formatReceipt } from "offline-delivery/client";
import { FileStorage } from "offline-delivery/client/node";

const path = new URL("./state.json", import.meta.url).pathname;
const opts = { baseUrl: "http://127.0.0.1:9", token: () => "t", storage: new FileStorage(path), socketFactory: null, syncIntervalMs: 0 };
const first = new OfflineClient(opts);
await first.send("general", { text: "hi" }, "m1");
// A new instance over the same file: the queued message survived (as after a restart).
const second = new OfflineClient({ ...opts, storage: new FileStorage(path) });
await second.ready();
assert.deepEqual(second.outbox().map((i) => i.client_msg_id), ["m1"]);
assert.equal(second.status, "offline");
assert.equal(typeof HttpError, "function");
assert.equal(formatReceipt({ conversationId: "c", seq: 1, members: 4, delivered: { users: 3, devices: 3 }, read: { users: 2 } }), "delivered to 3 of 4 people, read by 2");
console.log("node ok");
`;

try {
  step("build dist/client", () => void run(process.execPath, [join(ROOT, "scripts", "build-client.mjs")], ROOT));
  let tarball = "";
  step("npm pack", () => {
    // The build just ran; a `prepare` script would only repeat it.
    run("npm", ["pack", "--ignore-scripts", "--pack-destination", work], ROOT);
    tarball = join(work, readdirSync(work).find((f) => f.endsWith(".tgz")));
    return tarball;
  });
  step("npm install the tarball (offline)", () => {
    run("mkdir", ["-p", app], work);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "od-client-app", private: true, type: "module" }));
    run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], app);
  });
  step("(a) Node 20 imports and uses it", () => {
    writeFileSync(join(app, "check.mjs"), NODE_CHECK);
    return run(process.execPath, ["check.mjs"], app).trim();
  });
  for (const moduleResolution of ["Bundler", "NodeNext"]) {
    step(`(b) the app typechecks against the shipped declarations (${moduleResolution})`, () => {
      writeFileSync(join(app, "app.ts"), APP_TS);
      const module = moduleResolution === "NodeNext" ? "NodeNext" : "ES2022";
      const compilerOptions = { target: "ES2022", module, moduleResolution, lib: ["ES2023", "DOM"], types: [], strict: true, noEmit: true, skipLibCheck: false };
      writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["app.ts"] }));
      run(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], app);
    });
  }
  step("(c) esbuild bundles it for the browser", () => {
    const out = esbuild.buildSync({ entryPoints: [join(app, "app.ts")], absWorkingDir: app, bundle: true, platform: "browser", format: "esm", minify: true, write: false, logLevel: "silent" });
    const code = out.outputFiles[0].text;
    if (!code.includes("chat.example")) throw new Error("the bundle lost the app's code");
    if (/["']node:/.test(code)) throw new Error("a node: import reached the browser bundle");
    return `${(code.length / 1024).toFixed(0)} KiB minified`;
  });
  console.log("client package: all checks passed");
} catch (err) {
  console.error(`FAIL ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
