#!/usr/bin/env node
/**
 * The README's "Try it" walkthrough, run top to bottom exactly as printed
 * (`npm run test:e2e`): a newcomer pasting it into a terminal must meet no
 * surprise. Starts a throwaway wrangler dev, runs the block with bash -e
 * (every curl is -f: any non-2xx fails), then checks the outputs that show
 * the contract at work.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, assert, report, startServer } from "./lib.mjs";

const MARKER = "<!-- walkthrough: the block below is run by e2e/readme.mjs -->";

const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const at = readme.indexOf(MARKER);
assert(at >= 0, "README.md has no walkthrough marker");
const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at))?.[1];
assert(block, "no sh block after the walkthrough marker");

const server = await startServer("od-readme");
const r = report();
try {
  await r.check("README walkthrough runs top to bottom", async () => {
    const run = spawnSync("bash", ["-euo", "pipefail", "-c", block], { cwd: ROOT, env: { ...process.env, U: server.url }, encoding: "utf8", timeout: 120_000 });
    const out = run.stdout ?? "";
    if (run.status !== 0) throw new Error(`the walkthrough stopped with status ${run.status}\n${out.slice(-3000)}\n${(run.stderr ?? "").slice(-3000)}`);
    const expect = (fragment, what) => assert(out.includes(fragment), `${what}: expected ${fragment} in the output`);
    expect('{"ok":true}', "healthz");
    expect('"seq":2,', "the first message is seq 2");
    expect('"duplicate":true', "the retry is a duplicate");
    expect('"timeline":{"messages":[', "sync carries a timeline");
    expect('"delivered":{"users":1,"devices":1},"read":{"users":1}', "receipts after Bob's cursors");
    expect('"queued":1', "to-device queued for Bob's device");
    expect('"remaining":0', "to-device acked");
    expect('"ticket":"t2.carol.', "a socket ticket");
    assert(out.trimEnd().endsWith("204"), "deleting the device answers 204");
  });
} finally {
  await server.stop();
}
r.finish();
