#!/usr/bin/env node
/**
 * `node bench/lib/dev-quiet.mjs <port> <persist-dir>`, run in a Worker's directory
 * (its wrangler.toml): the local server `wrangler dev` runs, started through
 * wrangler's own DevEnv (the same proxy Worker in front, the same workerd, the
 * same state), without the DevTools inspector.
 *
 * Why: wrangler dev's inspector proxy enables the runtime's Network domain, so every
 * subrequest the Worker makes (the `stub.fetch` that hands a WebSocket upgrade to its
 * Durable Object is one) becomes an event the proxy posts to wrangler's node process,
 * which formats it and appends it to wrangler's debug log. Socket.IO pays nothing of
 * the kind; the `peerquiet` phase of bench/run.mjs measures how much of a reconnect
 * that is. Diagnostics only.
 */
import { unstable_DevEnv } from "wrangler";

const [port, persist] = process.argv.slice(2);
const devEnv = new unstable_DevEnv();
// The user Worker's own address behind the proxy Worker, for the straight-to-the-Worker figure (wrangler
// dev's inspector logs it; here it is printed from the event that carries it, an internal of DevEnv).
const onReloadComplete = devEnv.proxy.onReloadComplete.bind(devEnv.proxy);
devEnv.proxy.onReloadComplete = (event) => {
  const u = event.proxyData?.userWorkerUrl;
  if (u) console.log(`user Worker on ${u.protocol}//${u.hostname}:${u.port}`);
  return onReloadComplete(event);
};
const worker = await devEnv.startWorker({
  config: "wrangler.toml",
  dev: { inspector: false, server: { hostname: "127.0.0.1", port: Number(port) }, persist, logLevel: "warn" },
});
await worker.ready;
console.log(`ready on ${await worker.url}`);
const stop = async () => {
  await worker.dispose().catch(() => {});
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
