/**
 * The SDK's sockets against the real Worker: one-time tickets instead of a
 * token in the URL (v1.1, with the fallback for older servers), and frames
 * validated on arrival (malformed known frames dropped and reported, unknown
 * types tolerated). Frames are injected by wrapping the real socket's handlers.
 */
import { describe, expect, it } from "vitest";
import { fetchSocketFactory, MemoryStorage, ProtocolError, type ReceiptInfo, type SocketFactory, type SocketHandlers } from "../src/client";
import { client, cuttable, fixture, loggingFetch, Recorder, selfFetch, until } from "./client-fixtures";
import { sendMany, token } from "./helpers";

/** A real socket whose incoming frames the test can add to, per socket path ("live" or "inbox"). */
function injecting() {
  const base = fetchSocketFactory(selfFetch);
  const inject = { live: [] as SocketHandlers[], inbox: [] as SocketHandlers[] };
  const factory: SocketFactory = async (url, handlers) => {
    (new URL(url).pathname.endsWith("/live") ? inject.live : inject.inbox).push(handlers);
    return base(url, handlers);
  };
  /** Delivers `frames` to the newest socket of that kind as if the server had sent them. */
  const push = (kind: "live" | "inbox", ...frames: string[]) => {
    const target = inject[kind][inject[kind].length - 1]!;
    for (const f of frames) target.message(f);
  };
  return { factory, push };
}

describe("client socket tickets", () => {
  // Waits for the server's POST /v1/sockets/ticket (v1.1).
  it("connects live and inbox sockets with a fresh one-time ticket each, never with the token in the URL", async () => {
    const { alice, bob, conv } = await fixture(1);
    const rec = new Recorder();
    const { factory, open, urls } = cuttable();
    const { fetch, requests } = loggingFetch();
    const c = client(bob, new MemoryStorage(), { onEntries: rec.onEntries, socketFactory: factory, inbox: true, fetch });
    const up: Array<string | null> = [];
    c.on("socket", (s) => s.open && up.push(s.conversationId));
    c.show(conv);
    await c.start();
    await until(() => up.includes(conv) && up.includes(null));
    open[open.length - 1]!.close(1000, "cut");
    await until(() => up.filter((id) => id === conv).length === 2);
    await sendMany(alice, conv, 1, "after-cut");
    await until(() => rec.seqs.includes(3));
    c.stop();
    expect(urls.length).toBeGreaterThanOrEqual(3);
    for (const u of urls) {
      expect(u.searchParams.has("access_token")).toBe(false);
      expect(u.searchParams.get("ticket")).toBeTruthy();
    }
    expect(new Set(urls.map((u) => u.searchParams.get("ticket"))).size).toBe(urls.length);
    expect(requests.filter((r) => r.method === "POST" && r.url.pathname === "/v1/sockets/ticket").length).toBe(urls.length);
  });

  it("a ticket request with an expired token refreshes it first; the socket still opens", async () => {
    const { bob, conv } = await fixture(1);
    const expired = await token(bob.user, bob.device, { exp: Math.floor(Date.now() / 1000) - 3600 });
    const asked: boolean[] = [];
    let current = expired;
    const provider = async ({ forceRefresh }: { forceRefresh: boolean }) => {
      asked.push(forceRefresh);
      if (forceRefresh) current = await token(bob.user, bob.device);
      return current;
    };
    const { factory, urls } = cuttable();
    const c = client(bob, new MemoryStorage(), { token: provider, socketFactory: factory });
    let live = false;
    c.on("socket", (s) => (live = s.open));
    c.show(conv);
    await c.start();
    await until(() => live);
    c.stop();
    expect(asked).toContain(true);
    expect(urls.every((u) => u.searchParams.has("ticket") && !u.searchParams.has("access_token"))).toBe(true);
  });

  it("falls back to ?access_token= when the server has no ticket endpoint (404), and remembers it", async () => {
    const { alice, bob, conv } = await fixture(1);
    const rec = new Recorder();
    const { factory, open, urls } = cuttable();
    const { fetch, requests } = loggingFetch(async (req) =>
      new URL(req.url).pathname === "/v1/sockets/ticket" ? Response.json({ error: { code: "not_found", message: "no such route" } }, { status: 404 }) : selfFetch(req),
    );
    const c = client(bob, new MemoryStorage(), { onEntries: rec.onEntries, socketFactory: factory, fetch });
    let lives = 0;
    c.on("socket", (s) => s.open && s.conversationId === conv && lives++);
    c.show(conv);
    await c.start();
    await until(() => lives === 1);
    open[open.length - 1]!.close(1000, "cut");
    await until(() => lives === 2);
    await sendMany(alice, conv, 1, "live");
    await until(() => rec.seqs.includes(3));
    c.stop();
    expect(urls.map((u) => u.searchParams.get("access_token"))).toEqual([bob.jwt, bob.jwt]);
    expect(requests.filter((r) => r.url.pathname === "/v1/sockets/ticket")).toHaveLength(1);
  });
});

describe("client frame validation", () => {
  it("drops malformed known frames with an error, ignores unknown types, and still delivers every entry once", async () => {
    const { alice, bob, conv } = await fixture(2);
    const rec = new Recorder();
    const { factory, push } = injecting();
    const c = client(bob, new MemoryStorage(), { onEntries: rec.onEntries, socketFactory: factory });
    const errors: unknown[] = [];
    c.on("error", (e) => errors.push(e));
    let live = false;
    c.on("socket", (s) => (live = s.open));
    c.show(conv);
    await c.start();
    await c.whenIdle();
    await until(() => live);
    push(
      "live",
      JSON.stringify({ type: "message", message: { seq: "four", body: {} } }),
      "{not json",
      JSON.stringify({ type: "sparkles", level: 11 }),
      JSON.stringify({ type: "sent", client_msg_id: 7 }),
    );
    await sendMany(alice, conv, 3, "live");
    await until(() => rec.seqs.length === 6);
    c.stop();
    expect(errors.map((e) => (e instanceof ProtocolError ? e.message.split(":")[0] : String(e)))).toEqual([
      "dropped a malformed message frame",
      "dropped a malformed socket frame",
      "dropped a malformed sent frame",
    ]);
    expect([...rec.seqs].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(new Set(rec.seqs).size).toBe(6);
  });

  it("an unknown inbox frame is a hint to sync", async () => {
    const { bob } = await fixture(0);
    const { factory, push } = injecting();
    const c = client(bob, new MemoryStorage(), { socketFactory: factory, inbox: true });
    let inbox = false;
    c.on("socket", (s) => s.conversationId === null && (inbox = s.open));
    let synced = 0;
    c.on("synced", () => synced++);
    await c.start();
    await c.whenIdle();
    await until(() => inbox);
    const before = synced;
    push("inbox", JSON.stringify({ type: "future_hint", what: "something changed" }));
    await until(() => synced > before);
    c.stop();
  });

  it("receipt frames feed `receipt` events and the lower bounds of earlier own messages", async () => {
    const { alice, conv } = await fixture(0);
    const { factory, push } = injecting();
    const c = client(alice, new MemoryStorage(), { socketFactory: factory });
    const receipts: ReceiptInfo[] = [];
    c.on("receipt", (r) => receipts.push(r));
    const errors: unknown[] = [];
    c.on("error", (e) => errors.push(e));
    let live = false;
    c.on("socket", (s) => (live = s.open));
    c.show(conv);
    await c.start();
    await until(() => live);
    push("live", JSON.stringify({ type: "receipt", seq: 9, members: 3, delivered: { users: 2, devices: 4 }, read: { users: 1 } }));
    push("live", JSON.stringify({ type: "receipt", seq: 9, members: 3, delivered: { users: -1, devices: 4 }, read: { users: 1 } }));
    await until(() => receipts.length === 1);
    c.stop();
    expect(receipts).toEqual([{ conversationId: conv, seq: 9, members: 3, delivered: { users: 2, devices: 4 }, read: { users: 1 } }]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ProtocolError);
    expect(c.receiptFor(conv, 5)).toEqual({ conversationId: conv, seq: 5, members: 3, delivered: { users: 2, devices: 4 }, read: { users: 1 } });
    expect(c.receiptFor(conv, 10)).toBeUndefined();
  });
});
