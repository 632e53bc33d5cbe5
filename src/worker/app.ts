/** The public HTTP API (PROTOCOL.md): auth, validation, limits, then one DO call per route. */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { LIMITS } from "../protocol/limits";
import { deviceAuth, type AppEnv } from "./auth";
import { ApiError, errorResponse, handleError } from "./errors";
import { admin } from "./routes/admin";
import { bench } from "./routes/bench";
import { conversations } from "./routes/conversations";
import { devTokens } from "./routes/dev";
import { inboxSocket, isUpgrade, liveSocket, requireUpgrade } from "./routes/sockets";
import { cursors, devices, sync, toDevice } from "./routes/user";
import { media } from "./routes/media";
import { deviceRateLimit, signals } from "./signals";
import { doc, openApiDocument } from "./openapi";
import { jsonBodies } from "./validate";
import docsPage from "../docs/docs.html";

export const app = new Hono<AppEnv>();

app.onError(handleError);
app.notFound(() => errorResponse("not_found", "no such route"));

app.get("/healthz", doc({ summary: "Liveness", tag: "service", security: "none", ok: { status: 200, description: '{"ok": true}' } }), (c) => c.json({ ok: true }));
// Public and registered before the auth middleware below, which they therefore never reach.
app.get("/v1/openapi.json", openApiDocument(app));
app.get("/docs", (c) => c.html(docsPage));
app.route("/dev", devTokens);
app.route("/admin", admin);
app.route("/bench", bench);

app.use("/v1/*", signals);
// Media uploads stream to R2 with their own cap; every other body is JSON under the request limit.
const jsonLimit = bodyLimit({
  maxSize: LIMITS.maxRequestBytes,
  onError: () => {
    throw new ApiError("payload_too_large", `request body is over ${LIMITS.maxRequestBytes} bytes`);
  },
});
app.use("/v1/*", async (c, next) => (c.req.path === "/v1/media" ? next() : jsonLimit(c, next)));
app.use("/v1/*", async (c, next) => (c.req.path === "/v1/media" ? next() : jsonBodies(c, next)));
app.use("/v1/inbox", requireUpgrade);
app.use("/v1/conversations/:id/live", requireUpgrade);
// Browsers cannot set headers on a WebSocket, so upgrades may carry the token in the query.
app.use("/v1/*", deviceAuth({ allowQueryToken: (req) => isUpgrade(req) }));
app.use("/v1/*", deviceRateLimit);

app.route("/v1/devices", devices);
app.route("/v1/conversations", liveSocket);
app.route("/v1/conversations", conversations);
app.route("/v1/inbox", inboxSocket);
app.route("/v1/sync", sync);
app.route("/v1/cursors", cursors);
app.route("/v1/to-device", toDevice);
app.route("/v1/media", media);
