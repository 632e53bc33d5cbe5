/** Every error code of the contract from a real bad request, and bad input never changes state. */
import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import type { ErrorBody } from "../src/protocol/errors";
import type { ConversationSummary } from "../src/protocol/types";
import { Device, expectError, flush, range, request, SECRET, token, uid, type Res } from "./helpers";

/** A conversation with a couple of messages, and a snapshot function to prove nothing changed. */
async function world() {
  const alice = await Device.of(uid("alice"));
  const bob = await Device.of(uid("bob"));
  const conv = await alice.createConversation([bob.user]);
  await alice.sendOk(conv, "one");
  await bob.sendOk(conv, "two");
  await flush(conv);
  const snapshot = async () => {
    const [summary, page, sync] = await Promise.all([alice.summary(conv), alice.page(conv, "after=0"), bob.sync()]);
    return { summary: summary.body, page: page.body, syncConvs: sync.body.conversations };
  };
  const initial = await snapshot();
  expect(initial.summary.head_seq).toBe(3);
  return { alice, bob, conv, snapshot, initial };
}

function b64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

describe("400 invalid_request", () => {
  it("malformed JSON, with and without a JSON content-type", async () => {
    const { alice, conv, snapshot, initial } = await world();
    const path = `/v1/conversations/${conv}/messages`;
    for (const headers of [{ "content-type": "application/json" }, {} as Record<string, string>]) {
      for (const raw of ['{"client_msg_id": "x", "body": ', "not json", "{'a':1}"]) {
        expectError(await request("POST", path, { token: alice.jwt, raw, headers }), 400, "invalid_request");
      }
    }
    expectError(await request("POST", "/v1/conversations", { token: alice.jwt, raw: "{", headers: { "content-type": "application/json" } }), 400, "invalid_request");
    expect(await snapshot()).toEqual(initial);
  });

  it("JSON of the wrong shape: not an object, missing fields, wrong types", async () => {
    const { alice, conv, snapshot, initial } = await world();
    const path = `/v1/conversations/${conv}/messages`;
    for (const body of [[], 42, "str", null, {}, { client_msg_id: "x" }, { body: "x" }, { client_msg_id: 5, body: "x" }]) {
      const raw = JSON.stringify(body);
      expectError(await request("POST", path, { token: alice.jwt, raw, headers: { "content-type": "application/json" } }), 400, "invalid_request");
    }
    expectError(await alice.post("/v1/conversations", { members: "bob" }), 400, "invalid_request");
    expectError(await alice.post("/v1/conversations", {}), 400, "invalid_request");
    expectError(await alice.post(`/v1/conversations/${conv}/members`, { add: "bob" }), 400, "invalid_request");
    expect(await snapshot()).toEqual(initial);
  });

  it("bad ids: in the path, in client_msg_id, in members, in a created id", async () => {
    const { alice, conv, snapshot, initial } = await world();
    for (const bad of ["has%20space", "dot.ted", "x".repeat(65), "%C3%A9"]) {
      expectError(await alice.get(`/v1/conversations/${bad}`), 400, "invalid_request");
      expectError(await alice.get(`/v1/conversations/${bad}/messages`), 400, "invalid_request");
      expectError(await alice.post(`/v1/conversations/${bad}/messages`, { client_msg_id: "ok", body: 1 }), 400, "invalid_request");
    }
    for (const cmid of ["", "has space", "x".repeat(65), "é"]) {
      expectError(await alice.post(`/v1/conversations/${conv}/messages`, { client_msg_id: cmid, body: 1 }), 400, "invalid_request");
    }
    expectError(await alice.post(`/v1/conversations/${conv}/members`, { add: ["ok", "not ok"] }), 400, "invalid_request");
    expectError(await alice.post(`/v1/conversations/${conv}/members`, { remove: [""] }), 400, "invalid_request");

    const id = uid("c");
    expectError(await alice.post("/v1/conversations", { id, members: ["fine", "bad id"] }), 400, "invalid_request");
    expectError(await alice.post("/v1/conversations", { id: "bad id", members: [] }), 400, "invalid_request");
    // Over the member cap (1000 others + the creator) is refused by the object; nothing is created.
    const many = Array.from({ length: 1000 }, (_, i) => `u${i}`);
    expectError(await alice.post("/v1/conversations", { id, members: many }), 400, "invalid_request");
    expectError(await alice.post("/v1/conversations", { id, members: [...many, "one-more"] }), 400, "invalid_request");
    // The refused create left nothing behind: the id is still free.
    expectError(await alice.summary(id), 404, "not_found");
    expect((await alice.post("/v1/conversations", { id, members: [] })).status).toBe(201);
    expect(await snapshot()).toEqual(initial);
  });

  it("bad page cursors and limits", async () => {
    const { alice, conv, snapshot, initial } = await world();
    const bad = [
      "after=-1", "after=abc", "after=1.5", "after=1e1", "after=%201", "after=",
      "before=0", "before=-3", "before=x",
      "limit=0", "limit=501", "limit=-1", "limit=ten", "after=0&limit=1000",
      "after=0&before=3", "after=1&before=2",
      "after=4", "after=99999",
    ];
    for (const q of bad) {
      const res = await alice.page(conv, q);
      expect({ q, status: res.status }).toEqual({ q, status: 400 });
      expectError(res, 400, "invalid_request");
    }
    expect(await snapshot()).toEqual(initial);
  });

  it("bad cursor values in POST /v1/cursors", async () => {
    const { bob, conv, snapshot, initial } = await world();
    for (const body of [
      { read: { [conv]: -1 } },
      { read: { [conv]: "2" } },
      { read: { [conv]: 1.5 } },
      { received: { [conv]: null } },
      { received: { "bad id": 1 } },
      { received: [1] },
      { read: { [conv]: 2 }, received: { [conv]: -5 } },
    ]) {
      expectError(await bob.cursors(body as never), 400, "invalid_request");
    }
    expect(await snapshot()).toEqual(initial);
    expect((await bob.sync()).body.conversations[0]).toMatchObject({ read: 0, received: 0 });
  });

  it("unknown or malformed sync checkpoints", async () => {
    const { bob, snapshot, initial } = await world();
    const good = (await bob.sync()).body.checkpoint;
    for (const since of ["garbage", "c1.zzzzzz", "c2.1", "c1.-1", "c1.", "%20", encodeURIComponent(good + "0")]) {
      expectError(await bob.sync(`since=${since}`), 400, "invalid_request");
    }
    expectError(await bob.sync("since="), 400, "invalid_request");
    expect(await snapshot()).toEqual(initial);
  });

  it("bad to-device requests", async () => {
    const { alice, bob, snapshot, initial } = await world();
    await bob.register();
    for (const body of [
      { user: bob.user, client_msg_id: "x" },
      { user: "bad id", client_msg_id: "x", body: 1 },
      { user: bob.user, device: "bad id", client_msg_id: "x", body: 1 },
      { user: bob.user, client_msg_id: "", body: 1 },
    ]) {
      expectError(await alice.post("/v1/to-device", body), 400, "invalid_request");
    }
    expectError(await bob.post("/v1/to-device/ack", { up_to: -1 }), 400, "invalid_request");
    expectError(await bob.post("/v1/to-device/ack", { up_to: "5" }), 400, "invalid_request");
    expectError(await bob.post("/v1/to-device/ack", {}), 400, "invalid_request");
    expect((await bob.get("/v1/to-device")).body.entries).toEqual([]);
    expect(await snapshot()).toEqual(initial);
  });
});

describe("refused requests have no side effects", () => {
  it("a sync refused for a bad checkpoint does not register the calling device", async () => {
    const alice = await Device.of(uid("alice"));
    const bobPhone = await Device.of(uid("bob"), "phone");
    await bobPhone.register();
    await alice.createConversation([bobPhone.user]);
    const ghost = await Device.of(bobPhone.user, "ghost");
    expectError(await ghost.sync("since=garbage"), 400, "invalid_request");
    expectError(await ghost.sync("since=c1.zzzzzz"), 400, "invalid_request");
    // A fan-out to all of bob's devices reaches only the registered phone.
    const res = await alice.post("/v1/to-device", { user: bobPhone.user, client_msg_id: uid("td"), body: 1 });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ queued: 1 });
  });

  it("a to-device send refused with 403 does not burn its client_msg_id", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    await bob.register();
    expectError(await alice.post("/v1/to-device", { user: bob.user, client_msg_id: "first-try", body: "x" }), 403, "forbidden");
    await alice.createConversation([bob.user]);
    const res = await alice.post("/v1/to-device", { user: bob.user, client_msg_id: "first-try", body: "x" });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ queued: 1 });
    expect((await bob.get("/v1/to-device")).body.entries).toHaveLength(1);
  });

  it("a send refused with 403 does not burn its client_msg_id either", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([]);
    expectError(await bob.send(conv, "early", "early-id"), 403, "forbidden");
    await alice.members(conv, { add: [bob.user] });
    const res = await bob.send(conv, "early", "early-id");
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ seq: 3, duplicate: false });
  });
});

describe("401 unauthorized", () => {
  it("missing, malformed, forged, expired, alg none, no exp, bad sub: all 401 and nothing written", async () => {
    const { alice, conv, snapshot, initial } = await world();
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: alice.user, did: "phone" };
    const tokens: Record<string, string | undefined> = {
      missing: undefined,
      garbage: "not-a-jwt",
      threeParts: "a.b.c",
      forged: await token(alice.user, "phone", {}, "wrong-secret"),
      expired: await token(alice.user, "phone", { exp: now - 60 }),
      noExp: await sign(claims, SECRET, "HS256"),
      algNone: `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ ...claims, exp: now + 3600 })}.`,
      algNoneSigned: `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ ...claims, exp: now + 3600 })}.${b64url("sig")}`,
      hs512: await sign({ ...claims, exp: now + 3600 }, SECRET, "HS512"),
      badSub: await token("bad user", "phone"),
      noDid: await sign({ sub: alice.user, exp: now + 3600 }, SECRET, "HS256"),
      stringExp: await sign({ ...claims, exp: String(now + 3600) } as unknown as Parameters<typeof sign>[0], SECRET, "HS256"),
      notYetValid: await token(alice.user, "phone", { nbf: now + 3600 }),
    };
    // A valid token whose payload was swapped for another user's claims keeps the old signature.
    const real = alice.jwt.split(".");
    tokens.tamperedPayload = `${real[0]}.${b64url({ sub: uid("mallory"), did: "phone", exp: now + 3600 })}.${real[2]}`;

    for (const [name, jwt] of Object.entries(tokens)) {
      const send = await request("POST", `/v1/conversations/${conv}/messages`, {
        ...(jwt !== undefined ? { token: jwt } : {}),
        body: { client_msg_id: uid("m"), body: name },
      });
      expect({ name, status: send.status }).toEqual({ name, status: 401 });
      expectError(send, 401, "unauthorized");
      expectError(await request("GET", `/v1/conversations/${conv}/messages`, jwt !== undefined ? { token: jwt } : {}), 401, "unauthorized");
      expectError(await request("GET", "/v1/sync", jwt !== undefined ? { token: jwt } : {}), 401, "unauthorized");
    }
    expectError(await request("GET", "/v1/sync", { headers: { authorization: `Basic ${alice.jwt}` } }), 401, "unauthorized");
    expectError(await request("GET", "/v1/sync", { headers: { authorization: "Bearer" } }), 401, "unauthorized");
    // A token in the query string is only for WebSocket upgrades.
    expectError(await request("GET", `/v1/sync?access_token=${alice.jwt}`), 401, "unauthorized");
    expect(await snapshot()).toEqual(initial);
  });

  it("a valid token still works (the 401s above are about the token, not the route)", async () => {
    const { alice, conv } = await world();
    expect((await alice.send(conv, "ok")).status).toBe(201);
  });
});

describe("403 forbidden", () => {
  it("non-member read, send, membership change, cursor; to-device to a stranger", async () => {
    const { alice, conv, snapshot, initial } = await world();
    const eve = await Device.of(uid("eve"));
    expectError(await eve.page(conv, "after=0"), 403, "forbidden");
    expectError(await eve.summary(conv), 403, "forbidden");
    expectError(await eve.send(conv, "x"), 403, "forbidden");
    expectError(await eve.post(`/v1/conversations/${conv}/members`, { add: [eve.user] }), 403, "forbidden");
    expectError(await eve.cursors({ received: { [conv]: 1 } }), 403, "forbidden");
    expectError(await eve.post("/v1/to-device", { user: alice.user, client_msg_id: "x", body: 1 }), 403, "forbidden");
    expect(await snapshot()).toEqual(initial);
    expect((await eve.sync()).body.conversations).toEqual([]);
  });
});

describe("404 not_found", () => {
  it("unknown conversation on every conversation route; the id stays free", async () => {
    const alice = await Device.of(uid("alice"));
    const ghost = uid("ghost");
    expectError(await alice.summary(ghost), 404, "not_found");
    expectError(await alice.page(ghost, "after=0"), 404, "not_found");
    expectError(await alice.send(ghost, "x"), 404, "not_found");
    expectError(await alice.post(`/v1/conversations/${ghost}/members`, { add: ["bob"] }), 404, "not_found");
    const created = await alice.post<ConversationSummary>("/v1/conversations", { id: ghost, members: [] });
    expect(created.status).toBe(201);
    expect(created.body.head_seq).toBe(1);
  });

  it("unknown routes, with and without auth", async () => {
    const alice = await Device.of(uid("alice"));
    expectError(await alice.get("/v1/nope"), 404, "not_found");
    expectError(await alice.post("/v1/conversations/abc/nope", {}), 404, "not_found");
    expectError(await request("GET", "/nope/at/all"), 404, "not_found");
  });

  it("DELETE of an unknown device", async () => {
    const alice = await Device.of(uid("alice"));
    await alice.register();
    expectError(await alice.delete("/v1/devices/never-registered"), 404, "not_found");
    expect((await alice.delete("/v1/devices/phone")).status).toBe(204);
  });
});

describe("409", () => {
  it("conflict: a taken conversation id, by anyone; the original is unchanged", async () => {
    const { alice, conv, snapshot, initial } = await world();
    const mallory = await Device.of(uid("mallory"));
    expectError(await alice.post("/v1/conversations", { id: conv, members: [] }), 409, "conflict");
    expectError(await mallory.post("/v1/conversations", { id: conv, members: [mallory.user] }), 409, "conflict");
    expect(await snapshot()).toEqual(initial);
    expectError(await mallory.page(conv, "after=0"), 403, "forbidden");
  });

  it("conflict under a race: concurrent creates of one id → exactly one 201", async () => {
    const id = uid("race");
    const devices = await Promise.all(range(1, 6).map(() => Device.of(uid("racer"))));
    const results = await Promise.all(devices.map((d) => d.post<ConversationSummary>("/v1/conversations", { id, members: [] })));
    const winners = results.filter((r) => r.status === 201);
    expect(winners).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 201)) expectError(r, 409, "conflict");
    const winner = devices[results.indexOf(winners[0]!)]!;
    const summary = await winner.summary(id);
    expect(summary.body).toMatchObject({ id, head_seq: 1, members: [winner.user], epoch: winners[0]!.body.epoch });
  });

  it("epoch_mismatch: a stale epoch gets 409 with the current epoch in the body", async () => {
    const { alice, conv, snapshot, initial } = await world();
    const res = await alice.get<ErrorBody>(`/v1/conversations/${conv}/messages?after=0&epoch=stale-epoch`);
    expectError(res, 409, "epoch_mismatch");
    const body = res.body;
    expect(body.error.epoch ?? body.epoch).toBe(initial.summary.epoch);
    const ok = await alice.page(conv, `after=0&epoch=${initial.summary.epoch}`);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual(initial.page);
    expect(await snapshot()).toEqual(initial);
  });
});

describe("413 payload_too_large", () => {
  it("a message body over 64 KiB serialized is refused; exactly 64 KiB is accepted", async () => {
    const { alice, conv, snapshot, initial } = await world();
    const path = `/v1/conversations/${conv}/messages`;
    // JSON.stringify of a string adds two quote bytes.
    const over = await alice.post(path, { client_msg_id: uid("m"), body: "x".repeat(64 * 1024 - 1) });
    expectError(over, 413, "payload_too_large");
    // Counted in UTF-8 bytes, not characters: 32768 two-byte chars + quotes = 65538 bytes.
    expectError(await alice.post(path, { client_msg_id: uid("m"), body: "é".repeat(32 * 1024) }), 413, "payload_too_large");
    expectError(await alice.post(path, { client_msg_id: uid("m"), body: { text: "y".repeat(70_000) } }), 413, "payload_too_large");
    expect(await snapshot()).toEqual(initial);

    const exact = await alice.post(path, { client_msg_id: uid("m"), body: "x".repeat(64 * 1024 - 2) });
    expect(exact.status).toBe(201);
    expect(exact.body.seq).toBe(4);
  });

  it("a request over 256 KiB is refused before anything happens", async () => {
    const { alice, conv, snapshot, initial } = await world();
    const pad = "p".repeat(260 * 1024);
    expectError(await alice.post(`/v1/conversations/${conv}/messages`, { client_msg_id: uid("m"), body: "small", pad }), 413, "payload_too_large");
    const id = uid("c");
    expectError(await alice.post("/v1/conversations", { id, members: [], pad }), 413, "payload_too_large");
    expect(await snapshot()).toEqual(initial);
    expectError(await alice.summary(id), 404, "not_found");
  });
});

describe("no 5xx on junk", () => {
  it("odd but well-formed requests never produce a 5xx", async () => {
    const { alice, conv } = await world();
    const results: Res<unknown>[] = await Promise.all([
      alice.get(`/v1/conversations/${conv}/messages?after=0&after=1`),
      alice.get(`/v1/conversations/${conv}/messages?limit=500&before=9007199254740991`),
      alice.get(`/v1/conversations/${conv}/messages?after=9007199254740991`),
      alice.get(`/v1/conversations/${conv}/messages?epoch=${"e".repeat(65)}`),
      alice.post(`/v1/conversations/${conv}/messages`, { client_msg_id: "x", body: { deep: [[[[[[[[[[1]]]]]]]]]] } }),
      alice.post("/v1/cursors", { read: {} }),
      alice.post("/v1/to-device/ack", { up_to: 9007199254740991 }),
      alice.get("/v1/sync?since=c1.zzzzzzzzzzz"),
      alice.post(`/v1/conversations/${conv}/members`, { add: [], remove: [] }),
    ]);
    for (const r of results) expect(r.status).toBeLessThan(500);
  });
});
