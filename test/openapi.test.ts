/**
 * The OpenAPI document is generated from the validating schemas; these tests
 * fail when a route exists without a description, or when real responses
 * (errors included) stop matching what the document says.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ZodType } from "zod";
import {
  conversationSummarySchema,
  cursorsResponseSchema,
  deviceInfoSchema,
  errorBodySchema,
  messagePageSchema,
  queuedSchema,
  remainingSchema,
  sendResultSchema,
  syncResponseSchema,
  toDevicePageSchema,
} from "../src/protocol/responses";
import { app } from "../src/worker/app";
import { Device, request, uid } from "./helpers";

interface Operation {
  summary?: string;
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
  parameters?: { name: string; in: string }[];
  requestBody?: unknown;
}
type Spec = { openapi: string; paths: Record<string, Record<string, Operation>> };

const EXCLUDED = [/^\/dev\//, /^\/bench/, /^\/v1\/openapi\.json$/, /^\/docs$/];

async function spec(): Promise<Spec> {
  const res = await SELF.fetch("https://x/v1/openapi.json");
  expect(res.status).toBe(200);
  return (await res.json()) as Spec;
}

function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z_]+)/g, "{$1}");
}

function expectMatches(schema: ZodType, body: unknown): void {
  const result = schema.safeParse(body);
  if (!result.success) throw new Error(`${JSON.stringify(body).slice(0, 300)} does not match: ${result.error.message}`);
}

describe("OpenAPI document", () => {
  it("is OpenAPI 3.1 and describes every route the app serves", async () => {
    const doc = await spec();
    expect(doc.openapi).toBe("3.1.0");
    const routes = app.routes.filter((r) => r.method !== "ALL" && !EXCLUDED.some((x) => x.test(r.path)));
    expect(routes.length).toBeGreaterThanOrEqual(20);
    const missing = routes.filter((r) => !doc.paths[openApiPath(r.path)]?.[r.method.toLowerCase()]?.summary);
    expect(missing.map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });

  it("documents request parameters and bodies from the validating schemas", async () => {
    const doc = await spec();
    const page = doc.paths["/v1/conversations/{id}/messages"]!.get!;
    expect(page.parameters!.map((p) => `${p.in}:${p.name}`)).toEqual(
      expect.arrayContaining(["path:id", "query:after", "query:before", "query:limit", "query:epoch"]),
    );
    expect(doc.paths["/v1/conversations/{id}/messages"]!.post!.requestBody).toBeDefined();
    expect(doc.paths["/v1/cursors"]!.post!.requestBody).toBeDefined();
  });

  it("documents the contract's error shape on every device route, and real errors match it", async () => {
    const doc = await spec();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!path.startsWith("/v1/")) continue;
        expect(op.responses["401"], `${method} ${path}`).toBeDefined();
        expect(op.responses["401"]!.content!["application/json"]).toBeDefined();
      }
    }
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const errors = [
      await request("GET", "/v1/sync"), // 401
      await alice.get("/v1/sync?limit=0"), // 400
      await alice.get(`/v1/conversations/${uid("nope")}`), // 404
      await alice.get(`/v1/conversations/${conv}/messages?epoch=stale`), // 409 epoch_mismatch
      await alice.post(`/v1/conversations/${conv}/messages`, { client_msg_id: "big", body: "x".repeat(70_000) }), // 413
      await alice.post("/v1/conversations", { id: conv, members: [] }), // 409 conflict
    ];
    expect(errors.map((e) => e.status)).toEqual([401, 400, 404, 409, 413, 409]);
    for (const e of errors) expectMatches(errorBodySchema, e.body);
    const documented = (path: string, method: string) => Object.keys(doc.paths[path]![method]!.responses);
    expect(documented("/v1/conversations/{id}/messages", "get")).toEqual(expect.arrayContaining(["200", "400", "401", "403", "404", "409"]));
    expect(documented("/v1/conversations/{id}/messages", "post")).toEqual(expect.arrayContaining(["201", "413"]));
  });

  it("real success responses match the documented schemas", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const created = await alice.post("/v1/conversations", { members: [bob.user] });
    expectMatches(conversationSummarySchema, created.body);
    const conv = created.body.id as string;
    expectMatches(sendResultSchema, (await alice.send(conv, "hi")).body);
    expectMatches(messagePageSchema, (await bob.get(`/v1/conversations/${conv}/messages?after=0`)).body);
    expectMatches(messagePageSchema, (await bob.get(`/v1/conversations/${conv}/messages`)).body);
    expectMatches(syncResponseSchema, (await bob.get("/v1/sync")).body);
    expectMatches(cursorsResponseSchema, (await bob.post("/v1/cursors", { received: { [conv]: 2 }, read: { [conv]: 2 } })).body);
    expectMatches(deviceInfoSchema, (await bob.post("/v1/devices", { push: { provider: "webhook", token: "t" } })).body);
    expectMatches(queuedSchema, (await alice.post("/v1/to-device", { user: bob.user, client_msg_id: "k1", body: { k: 1 } })).body);
    expectMatches(toDevicePageSchema, (await bob.get("/v1/to-device")).body);
    expectMatches(remainingSchema, (await bob.post("/v1/to-device/ack", { up_to: 1 })).body);
  });

  it("says what clients send and get, not how the validators work (issue #13)", async () => {
    const doc = (await spec()) as unknown as { paths: Record<string, Record<string, any>>; components: { schemas: Record<string, unknown> } };
    const op = (path: string, method: string) => doc.paths[path]![method]!;
    const query = (path: string, method: string, name: string) =>
      (op(path, method).parameters as { in: string; name: string; schema: unknown }[]).find((p) => p.in === "query" && p.name === name)?.schema;
    // Query integers are integers with their ranges, not strings with a pattern.
    for (const [path, method] of [["/v1/conversations/{id}/messages", "get"], ["/v1/sync", "get"], ["/v1/to-device", "get"]]) {
      expect(query(path!, method!, "limit")).toEqual({ type: "integer", minimum: 1, maximum: 500 });
    }
    expect(query("/v1/sync", "get", "timeline_limit")).toEqual({ type: "integer", minimum: 0, maximum: 50 });
    expect(query("/v1/conversations/{id}/members", "get", "limit")).toEqual({ type: "integer", minimum: 1, maximum: 1000 });
    expect(query("/v1/conversations/{id}/receipts", "get", "seq")).toMatchObject({ type: "integer", minimum: 1 });
    // Cursors: the object form clients send.
    const cursors = op("/v1/cursors", "post").requestBody.content["application/json"];
    for (const field of ["received", "read"]) {
      expect(cursors.schema.properties[field]).toMatchObject({ type: "object", maxProperties: 100, additionalProperties: { type: "integer", minimum: 0 } });
      expect(cursors.schema.properties[field]).not.toHaveProperty("items");
    }
    expect(cursors.example).toEqual({ received: { general: 2 }, read: { general: 2 } });
    // Bodies that may be empty are optional; the media upload is raw bytes of the allowed types.
    for (const path of ["/v1/devices", "/v1/cursors", "/v1/conversations/{id}/members"]) expect(op(path, "post").requestBody.required, path).toBe(false);
    expect(op("/v1/conversations/{id}/messages", "post").requestBody.required).toBe(true);
    const upload = op("/v1/media", "post").requestBody;
    expect(upload.required).toBe(true);
    expect(Object.keys(upload.content)).toEqual(expect.arrayContaining(["image/jpeg", "image/png", "application/pdf"]));
    expect(upload.content["image/jpeg"].schema).toEqual({ type: "string", format: "binary" });
    // Every status a route answers: duplicate sends, ranges and revalidations, plain GETs of socket paths.
    expect(Object.keys(op("/v1/conversations/{id}/messages", "post").responses)).toEqual(expect.arrayContaining(["200", "201"]));
    const download = op("/v1/media/{media_id}", "get").responses;
    expect(Object.keys(download)).toEqual(expect.arrayContaining(["200", "206", "304"]));
    expect(Object.keys(download["200"].content)).toContain("image/jpeg");
    expect(Object.keys(download["206"].headers)).toEqual(expect.arrayContaining(["ETag", "x-content-sha256", "Content-Range"]));
    expect(download["304"].content).toBeUndefined();
    for (const path of ["/v1/inbox", "/v1/conversations/{id}/live"]) {
      const socket = op(path, "get");
      expect(Object.keys(socket.responses)).toEqual(expect.arrayContaining(["101", "401", "426"]));
      expect(socket.responses["426"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Error" });
      expect(socket.parameters.filter((p: { in: string }) => p.in === "query").map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["access_token", "ticket"]));
      expect(socket.security).toEqual([{ device: [] }, { ticket: [] }, { query_token: [] }]);
    }
    expect(op("/v1/devices/{device_id}", "delete").responses["204"].content).toBeUndefined();
    expect(op("/v1/sync", "get").responses["429"].headers["Retry-After"]).toMatchObject({ required: true, schema: { type: "integer" } });
    // Content types and bodies of the service and admin endpoints.
    expect(op("/healthz", "get").responses["200"].content["application/json"].schema).toMatchObject({ properties: { ok: { const: true } } });
    expect(Object.keys(op("/admin", "get").responses["200"].content)).toEqual(["text/html"]);
    expect(Object.keys(op("/admin/api/metrics", "get").responses["200"].content)).toEqual(["text/plain; version=0.0.4"]);
    for (const [path, schema] of [["/admin/api/metrics.json", "MetricsSnapshot"], ["/admin/api/users/{id}", "UserStats"], ["/admin/api/conversations/{id}", "ConversationStats"], ["/admin/api/push", "PushGates"]]) {
      expect(op(path!, "get").responses["200"].content["application/json"].schema).toEqual({ $ref: `#/components/schemas/${schema}` });
      expect(doc.components.schemas[schema!]).toBeDefined();
    }
    // No operation keeps hono-openapi's generic validation error or our private x-request.
    expect(JSON.stringify(doc)).not.toContain("Validation Error");
    expect(JSON.stringify(doc)).not.toContain("x-request");
    expect(JSON.stringify(doc)).not.toContain("{media}");
  });

  it("serves a browsable reference at /docs that covers every path and the socket frames", async () => {
    const res = await SELF.fetch("https://x/docs");
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("/v1/openapi.json");
    for (const frame of ["hello", "messages", "live", "message", "sent", "acked", "poke", "read", "membership", "error"]) {
      expect(html).toContain(`"${frame}"`);
    }
  });
});
