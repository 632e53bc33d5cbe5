/**
 * Media on R2: streamed upload with a checksum, attachment metadata in pages,
 * lazy ranged download under membership history, limits that store nothing,
 * and retention deleting objects nobody references any more.
 */
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, Device, uid } from "./helpers";

function bytes(n: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = x & 0xff;
  }
  return out;
}

async function sha256(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function upload(dev: Device, data: Uint8Array, type = "image/png", query = "") {
  const res = await SELF.fetch(`${BASE}/v1/media${query}`, {
    method: "POST",
    headers: { authorization: `Bearer ${dev.jwt}`, "content-type": type, "content-length": String(data.byteLength) },
    body: data,
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

function download(dev: Device, id: string, headers: Record<string, string> = {}) {
  return SELF.fetch(`${BASE}/v1/media/${id}`, { headers: { authorization: `Bearer ${dev.jwt}`, ...headers } });
}

async function objectsOf(owner: string): Promise<string[]> {
  const list = await env.MEDIA.list({ prefix: "media/" });
  return list.objects.map((o) => o.key).filter((k) => k.endsWith(`.${owner}`));
}

describe("media", () => {
  it("uploads, references by id, carries metadata only, and downloads lazily with ranges", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const data = bytes(1_000_000);
    const up = await upload(alice, data, "image/jpeg", "?preview=LEHV6nWB2yk8pyo0adR*.7kCMdnj");
    expect(up.status).toBe(201);
    expect(up.body).toMatchObject({ size: 1_000_000, mime: "image/jpeg", sha256: await sha256(data), preview: "LEHV6nWB2yk8pyo0adR*.7kCMdnj" });
    const id = up.body.media_id as string;
    const sent = await alice.post(`/v1/conversations/${conv}/messages`, { client_msg_id: "p1", body: { text: "photo" }, attachments: [id] });
    expect(sent.status).toBe(201);
    const page = await bob.get(`/v1/conversations/${conv}/messages?after=0`);
    const msg = page.body.messages.find((m: { seq: number }) => m.seq === sent.body.seq);
    expect(msg.attachments).toEqual([{ media_id: id, size: 1_000_000, mime: "image/jpeg", sha256: up.body.sha256, preview: "LEHV6nWB2yk8pyo0adR*.7kCMdnj" }]);
    expect(JSON.stringify(page.body).length).toBeLessThan(5_000); // metadata, not bytes

    const full = await download(bob, id);
    expect(full.status).toBe(200);
    expect(full.headers.get("accept-ranges")).toBe("bytes");
    expect(full.headers.get("cache-control")).toContain("private");
    expect(new Uint8Array(await full.arrayBuffer())).toEqual(data);
    const part = await download(bob, id, { range: "bytes=100-199" });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 100-199/1000000");
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(data.slice(100, 200));
    const etag = full.headers.get("etag")!;
    const cached = await download(bob, id, { "if-none-match": etag });
    expect(cached.status).toBe(304);
  });

  it("ranges past the end are 416, suffix and open ranges are 206, a failed If-Match is 412", async () => {
    const alice = await Device.of(uid("alice"));
    const data = bytes(1000);
    const up = await upload(alice, data);
    const id = up.body.media_id as string;
    const etag = (await download(alice, id)).headers.get("etag")!;

    const past = await download(alice, id, { range: "bytes=1000-1099" });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */1000");
    expect(((await past.json()) as { error: { code: string } }).error.code).toBe("range_not_satisfiable");
    expect((await download(alice, id, { range: "bytes=-0" })).status).toBe(416);

    const suffix = await download(alice, id, { range: "bytes=-100" });
    expect(suffix.status).toBe(206);
    expect(suffix.headers.get("content-range")).toBe("bytes 900-999/1000");
    expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(data.slice(900));
    const open = await download(alice, id, { range: "bytes=990-" });
    expect(open.headers.get("content-range")).toBe("bytes 990-999/1000");
    expect(new Uint8Array(await open.arrayBuffer())).toEqual(data.slice(990));
    const clipped = await download(alice, id, { range: "bytes=995-5000" });
    expect(clipped.headers.get("content-range")).toBe("bytes 995-999/1000");
    expect(new Uint8Array(await clipped.arrayBuffer())).toEqual(data.slice(995));
    // Several ranges, or one that does not parse: the whole object (RFC 9110 lets a server ignore Range).
    for (const range of ["bytes=0-1,5-6", "bytes=x-y", "items=0-1"]) {
      const whole = await download(alice, id, { range });
      expect(whole.status).toBe(200);
      expect((await whole.arrayBuffer()).byteLength).toBe(1000);
    }

    const stale = await download(alice, id, { "if-match": '"not-the-tag"' });
    expect(stale.status).toBe(412);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe("precondition_failed");
    expect((await download(alice, id, { "if-match": etag })).status).toBe(200);
    expect((await download(alice, id, { "if-match": etag, "if-none-match": etag })).status).toBe(304);
    expect((await download(alice, id, { "if-match": '"not-the-tag"', "if-none-match": etag })).status).toBe(412);
  });

  it("a non-member and a member who joined after the referencing entry cannot fetch", async () => {
    const alice = await Device.of(uid("alice"));
    const carol = await Device.of(uid("carol"));
    const eve = await Device.of(uid("eve"));
    const conv = await alice.createConversation([]);
    const up = await upload(alice, bytes(2048));
    await alice.post(`/v1/conversations/${conv}/messages`, { client_msg_id: "p1", body: null, attachments: [up.body.media_id] });
    await alice.post(`/v1/conversations/${conv}/members`, { add: [carol.user] });
    expect((await download(eve, up.body.media_id)).status).toBe(403);
    expect((await download(carol, up.body.media_id)).status).toBe(403);
    expect((await download(alice, up.body.media_id)).status).toBe(200);
    expect((await download(eve, `m${"0".repeat(24)}.${alice.user}`)).status).toBe(404);
  });

  it("only the owner's finished uploads can be attached", async () => {
    const alice = await Device.of(uid("alice"));
    const mallory = await Device.of(uid("mallory"));
    const conv = await mallory.createConversation([alice.user]);
    const up = await upload(alice, bytes(100));
    const stolen = await mallory.post(`/v1/conversations/${conv}/messages`, { client_msg_id: "s1", body: 1, attachments: [up.body.media_id] });
    expect(stolen.status).toBe(400);
    expect(stolen.body.error.code).toBe("invalid_request");
    expect((await mallory.get(`/v1/conversations/${conv}`)).body.head_seq).toBe(1);
  });

  it("a too-large or wrongly typed upload gets 413/400 and stores nothing", async () => {
    const alice = await Device.of(uid("alice"));
    const typed = await upload(alice, bytes(100), "application/x-msdownload");
    expect(typed.status).toBe(400);
    expect(typed.body.error.code).toBe("invalid_request");
    const big = await SELF.fetch(`${BASE}/v1/media`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice.jwt}`, "content-type": "image/png", "content-length": String(26 * 1024 * 1024) },
      body: bytes(16),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
    expect(await objectsOf(alice.user)).toEqual([]);
    const rows = await runInDurableObject(env.USERS.get(env.USERS.idFromName(alice.user)), (_o, s) => s.storage.sql.exec("SELECT count(*) AS n FROM media").one());
    expect(rows.n).toBe(0);
  });

  it("retention deletes objects whose last referencing entry is gone, and counts them", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([], { retention: { max_messages: 1 } });
    const first = await upload(alice, bytes(500, 1));
    const kept = await upload(alice, bytes(500, 2));
    await alice.post(`/v1/conversations/${conv}/messages`, { client_msg_id: "a", body: 1, attachments: [first.body.media_id] });
    await alice.post(`/v1/conversations/${conv}/messages`, { client_msg_id: "b", body: 2, attachments: [kept.body.media_id] });
    const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conv));
    for (let i = 0; i < 5; i++) await runDurableObjectAlarm(stub);
    const remaining = await objectsOf(alice.user);
    expect(remaining).toEqual([`media/${kept.body.media_id}`]);
    const user = await runInDurableObject(env.USERS.get(env.USERS.idFromName(alice.user)), (_o, s) =>
      s.storage.sql.exec("SELECT media_deleted FROM user_meta").one(),
    );
    expect(user.media_deleted).toBe(1);
    expect((await download(alice, first.body.media_id)).status).toBe(404);
  });

  it("enforces the per-user quota", async () => {
    const alice = await Device.of(uid("alice"));
    await runInDurableObject(env.USERS.get(env.USERS.idFromName(alice.user)), (_o, s) => {
      s.storage.sql.exec("INSERT INTO media (media_id, size, mime, status, created_at) VALUES ('big', ?, 'image/png', 'stored', ?)", 1024 ** 3, Date.now());
    });
    const res = await upload(alice, bytes(10));
    expect(res.status).toBe(403);
    expect(res.body.error.message).toContain("quota");
  });
});
