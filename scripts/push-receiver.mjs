#!/usr/bin/env node
/**
 * The local push provider for `npm start`: receives the Worker's webhook pushes,
 * checks each `x-push-signature` (HMAC-SHA256 of the raw body with
 * PUSH_WEBHOOK_SECRET), prints them, and keeps the newest 100 for the demo page
 * (GET /pushes, CORS open). Stand-in for an operator's real push service.
 *
 *   node scripts/push-receiver.mjs [--port 8789]
 *
 * The port: --port, else PUSH_RECEIVER_PORT, else 8789 (`npm start` passes
 * --port: PORT+2 or its PUSH_RECEIVER_PORT). A port in use is one line on
 * stderr and exit code 1, not a stack trace.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { readDevVars } from "./lib/dev-auth.mjs";

const args = process.argv.slice(2);
const portArg = args.includes("--port") ? args[args.indexOf("--port") + 1] : process.env.PUSH_RECEIVER_PORT;
const port = portArg === undefined ? 8789 : Number(portArg);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`push-receiver: bad port ${JSON.stringify(portArg)}`);
  process.exit(2);
}
const secret = process.env.PUSH_WEBHOOK_SECRET ?? readDevVars().PUSH_WEBHOOK_SECRET;
if (!secret) {
  console.error("push-receiver: PUSH_WEBHOOK_SECRET is not set (env or .dev.vars)");
  process.exit(2);
}

const MAX_KEPT = 100;
const received = [];

function verify(raw, signature) {
  const expected = createHmac("sha256", secret).update(raw).digest();
  const given = Buffer.from(String(signature ?? ""), "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const server = createServer((req, res) => {
  res.setHeader("access-control-allow-origin", "*");
  if (req.method === "GET" && req.url === "/pushes") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(received));
    return;
  }
  if (req.method !== "POST" || req.url !== "/push") {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks);
    if (!verify(raw, req.headers["x-push-signature"])) {
      console.log("push-receiver: REJECTED a push with a bad signature");
      res.writeHead(401).end();
      return;
    }
    const push = JSON.parse(raw.toString("utf8"));
    received.unshift({ ...push, received_at: new Date().toISOString() });
    received.length = Math.min(received.length, MAX_KEPT);
    console.log(`push-receiver: ${push.user_id}/${push.device_id} ← conversation ${push.conversation_id} head ${push.head_seq}, ${push.unread} unread (${push.count} conversation${push.count === 1 ? "" : "s"})`);
    res.writeHead(204).end();
  });
});

server.on("error", (err) => {
  const why = err.code === "EADDRINUSE" ? "the port is in use (another `npm start`? set PUSH_RECEIVER_PORT)" : err.message;
  console.error(`push-receiver: cannot listen on http://127.0.0.1:${port}: ${why}`);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => console.log(`push-receiver: listening on http://127.0.0.1:${port}/push`));
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // the demo page's keep-alive polls would hold close() open
  });
}
