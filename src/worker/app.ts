/**
 * The public HTTP API (PROTOCOL.md v1.1): the middleware every request passes,
 * then one table of routes. Each route's documentation stands beside it in its
 * file under routes/ (or src/media/routes.ts) and becomes /v1/openapi.json.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { settings } from "../config/settings";
import { errorResponse } from "../platform/errors";
import { setLogLevel } from "../platform/log";
import { healthSchema } from "../protocol/admin-responses";
import { LIMITS } from "../protocol/limits";
import { media } from "../media/routes";
import docsPage from "../docs/docs.html";
import { deviceAuth, type AppEnv } from "./auth";
import { cors } from "./cors";
import { ApiError, handleError } from "./errors";
import { doc, openApiDocument } from "./openapi";
import { admin } from "./routes/admin";
import { conversations } from "./routes/conversations";
import { devTokens } from "./routes/dev";
import { devices } from "./routes/devices";
import { inboxSocket, isSocketPath, isUpgrade, liveSocket, requireUpgrade, tickets } from "./routes/sockets";
import { cursors, sync } from "./routes/sync";
import { toDevice } from "./routes/to-device";
import { deviceRateLimit, signals } from "./signals";
import { jsonBody } from "./validate";

export const app = new Hono<AppEnv>();

/** The Worker's entry: the log level for this environment, then the app. */
export function fetchHandler(request: Request, env: AppEnv["Bindings"], ctx: ExecutionContext): Response | Promise<Response> {
  setLogLevel(settings(env).logLevel);
  return app.fetch(request, env, ctx);
}

app.onError(handleError);
app.notFound(() => errorResponse("not_found", "no such route"));

// ---- middleware, in order ----
// Preflights are answered here, before authentication (browsers send them without credentials).
app.use("*", cors);
// Public, and registered before the /v1/* middleware below, which it therefore never reaches.
app.get("/v1/openapi.json", openApiDocument(app));
app.use("/v1/*", signals);
// Media uploads stream to R2 with their own cap; every other body is JSON under the request limit.
const jsonLimit = bodyLimit({
  maxSize: LIMITS.maxRequestBytes,
  onError: () => {
    throw new ApiError("payload_too_large", `request body is over ${LIMITS.maxRequestBytes} bytes`);
  },
});
app.use("/v1/*", async (c, next) => {
  if (c.req.path === "/v1/media") return next();
  await jsonLimit(c, async () => {
    await jsonBody(c);
    await next();
  });
});
app.use("/v1/inbox", requireUpgrade);
app.use("/v1/conversations/:id/live", requireUpgrade);
// Browsers cannot set headers on a WebSocket: socket upgrades (only) may carry a ticket or token in the query.
app.use("/v1/*", deviceAuth({ allowQuery: (req, path) => isSocketPath(path) && isUpgrade(req) }));
app.use("/v1/*", deviceRateLimit);

// ---- routes ----
app.get("/healthz", doc({ summary: "Liveness", tag: "service", security: "none", ok: { status: 200, description: "alive", schema: healthSchema } }), (c) => c.json({ ok: true as const }));
app.get("/docs", (c) => c.html(docsPage));
app.route("/dev", devTokens);
app.route("/admin", admin);
app.route("/v1/devices", devices);
app.route("/v1/conversations", liveSocket);
app.route("/v1/conversations", conversations);
app.route("/v1/inbox", inboxSocket);
app.route("/v1/sockets", tickets);
app.route("/v1/sync", sync);
app.route("/v1/cursors", cursors);
app.route("/v1/to-device", toDevice);
app.route("/v1/media", media);
