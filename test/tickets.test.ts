/**
 * Socket tickets (PROTOCOL.md v1.1) end to end, with real WebSocket upgrades
 * through SELF: one-time (also under a race), bound to the issuing user and
 * device, expiring, refused with 401 before any upgrade when used, expired,
 * forged or tampered, bounded in storage, and never stored in the clear.
 */
import { createExecutionContext, env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { TUNING } from "../src/config/tuning";
import type { Env } from "../src/env";
import worker from "../src/index";
import { Sql } from "../src/platform/sql";
import { LIMITS } from "../src/protocol/limits";
import type { MessagePage } from "../src/protocol/types";
import { checkTicket, TicketStore } from "../src/user/tickets";
import { BASE, Device, SECRET, uid, userStub } from "./helpers";
import { TestSocket } from "./sockets";

interface Ticket {
  ticket: string;
  expires_in: number;
}

async function ticketFor(dev: Device): Promise<string> {
  const res = await dev.post<Ticket>("/v1/sockets/ticket");
  expect(res.status).toBe(200);
  expect(res.body.expires_in).toBe(LIMITS.ticketTtlSeconds);
  return res.body.ticket;
}

/** A raw upgrade; the caller inspects the answer. */
async function upgrade(path: string): Promise<Response> {
  const res = await SELF.fetch(BASE + path, { headers: { upgrade: "websocket" } });
  if (res.webSocket) res.webSocket.accept();
  return res;
}

async function expect401(res: Response): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.webSocket).toBeFalsy();
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe("unauthorized");
  expect(body.error.message.length).toBeGreaterThan(0);
}

function rows(user: string): Promise<Record<string, SqlStorageValue>[]> {
  return runInDurableObject(userStub(user), (_obj, state) => state.storage.sql.exec("SELECT * FROM tickets").toArray());
}

describe("socket tickets", () => {
  it("POST /v1/sockets/ticket → {ticket, expires_in: 60}; the ticket opens an inbox socket and a live socket, once", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);

    const inboxTicket = await ticketFor(alice);
    const inbox = await TestSocket.must(`/v1/inbox?ticket=${inboxTicket}`);
    expect((await inbox.next("hello")).type).toBe("hello");
    await expect401(await upgrade(`/v1/inbox?ticket=${inboxTicket}`));

    const liveTicket = await ticketFor(alice);
    const live = await TestSocket.must(`/v1/conversations/${conv}/live?after=0&ticket=${encodeURIComponent(liveTicket)}`);
    expect(await live.next("hello")).toMatchObject({ conversation_id: conv });
    await live.next("live");
    await expect401(await upgrade(`/v1/conversations/${conv}/live?after=0&ticket=${liveTicket}`));
    inbox.close();
    live.close();
  });

  it("two upgrades racing with one ticket: exactly one gets a socket", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    for (let round = 0; round < 5; round++) {
      const ticket = await ticketFor(alice);
      const paths = round % 2 === 0 ? [`/v1/inbox?ticket=${ticket}`, `/v1/inbox?ticket=${ticket}`] : [`/v1/inbox?ticket=${ticket}`, `/v1/conversations/${conv}/live?ticket=${ticket}`];
      const results = await Promise.all([...paths, paths[0]!].map(upgrade));
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([101, 401, 401]);
      for (const r of results) {
        if (r.status === 101) r.webSocket!.close(1000, "done");
        else await expect401(r);
      }
    }
    expect(await rows(alice.user)).toEqual([]);
  });

  it("bound to the issuing user and device: the socket acts as that device; another user's conversation is refused", async () => {
    const alice = await Device.of(uid("alice"), "tablet");
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([]);
    const bobConv = await bob.createConversation([]);

    const live = await TestSocket.must(`/v1/conversations/${conv}/live?after=0&ticket=${await ticketFor(alice)}`);
    await live.next("live");
    live.send({ type: "send", client_msg_id: "via-ticket", body: { text: "hi" } });
    expect(await live.next("sent")).toMatchObject({ client_msg_id: "via-ticket", duplicate: false });
    const page = await alice.get<MessagePage>(`/v1/conversations/${conv}/messages?after=0`);
    expect(page.body.messages.at(-1)).toMatchObject({ client_msg_id: "via-ticket", sender: { user: alice.user, device: "tablet" } });
    live.close();

    // Alice's ticket is alice: on bob's conversation it is a non-member's upgrade.
    const refused = await upgrade(`/v1/conversations/${bobConv}/live?ticket=${await ticketFor(alice)}`);
    expect(refused.status).toBe(403);
    expect(refused.webSocket).toBeFalsy();
  });

  it("forged, tampered, foreign and malformed tickets: 401 before any upgrade", async () => {
    const alice = await Device.of(uid("alice"));
    const mallory = await Device.of(uid("mallory"));
    const good = await ticketFor(alice);
    const [prefix, user, exp, secret, mac] = good.split(".") as [string, string, string, string, string];
    expect(prefix).toBe("t2");
    expect(user).toBe(alice.user);
    const flip = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1);

    // A ticket with a valid MAC for alice, but issued (stored) by mallory's object: the row is what authenticates.
    const foreign = await runInDurableObject(userStub(mallory.user), (_obj, state) =>
      new TicketStore(new Sql(state.storage)).issue(alice.user, "phone", Date.now(), SECRET),
    );
    expect(await checkTicket(foreign.ticket, SECRET, Date.now())).toMatchObject({ user: alice.user });

    const bad: [string, string][] = [
      ["other user in the ticket", [prefix, mallory.user, exp, secret, mac].join(".")],
      ["later expiry", [prefix, user, String(Number(exp) + 3_600_000), secret, mac].join(".")],
      ["other secret", [prefix, user, exp, flip(secret), mac].join(".")],
      ["other mac", [prefix, user, exp, secret, flip(mac)].join(".")],
      ["mac signed with another secret", (await new TicketStore(fakeSql()).issue(alice.user, "phone", Date.now(), "not-the-secret")).ticket],
      ["issued in another user's object", foreign.ticket],
      ["the v1 format", `t1.${alice.user}.${secret}`],
      ["empty", ""],
      ["garbage", "garbage"],
      ["a JWT", alice.jwt],
      ["very long", `${good}${"x".repeat(10_000)}`],
      ["unicode", "t2.é.1.x.y"],
    ];
    for (const [name, ticket] of bad) {
      const res = await upgrade(`/v1/inbox?ticket=${encodeURIComponent(ticket)}`);
      expect({ name, status: res.status }).toEqual({ name, status: 401 });
      await expect401(res);
    }
    // None of that used up the real ticket.
    const ok = await upgrade(`/v1/inbox?ticket=${good}`);
    expect(ok.status).toBe(101);
    ok.webSocket!.close(1000, "done");
  });

  it("forged and expired tickets are refused without any Durable Object call (no object is created for a made-up user)", async () => {
    const alice = await Device.of(uid("alice"));
    const good = await ticketFor(alice);
    const [, , exp, secret, mac] = good.split(".") as [string, string, string, string, string];
    const stale = await new TicketStore(fakeSql()).issue(alice.user, alice.device, Date.now() - 120_000, SECRET);
    let gets = 0;
    const users = new Proxy(env.USERS, {
      get(target, prop, receiver) {
        if (prop === "get") gets += 1;
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const bindings = { ...env, USERS: users } as unknown as Env;
    for (const forged of [`t2.${uid("nobody")}.${exp}.${secret}.${mac}`, `t2.${uid("nobody")}.${Date.now() + 60_000}.${"A".repeat(43)}.${"B".repeat(43)}`, stale.ticket]) {
      const res = await worker.fetch(new Request(`${BASE}/v1/inbox?ticket=${forged}`, { headers: { upgrade: "websocket" } }), bindings, createExecutionContext());
      await expect401(res);
    }
    expect(gets).toBe(0);
    // The same path with the real ticket does call the object (the counter counts).
    const ok = await worker.fetch(new Request(`${BASE}/v1/inbox?ticket=${good}`, { headers: { upgrade: "websocket" } }), bindings, createExecutionContext());
    expect(ok.status).toBe(101);
    ok.webSocket!.accept();
    ok.webSocket!.close(1000, "done");
    expect(gets).toBeGreaterThan(0);
  });

  it("expired tickets are refused: past their stated expiry (Worker) and past their stored expiry (object)", async () => {
    const alice = await Device.of(uid("alice"));
    // Issued 61 s ago with the real TTL: the MAC holds, the expiry does not.
    const stale = await runInDurableObject(userStub(alice.user), (_obj, state) =>
      new TicketStore(new Sql(state.storage)).issue(alice.user, alice.device, Date.now() - (LIMITS.ticketTtlSeconds + 1) * 1000, SECRET),
    );
    await expect401(await upgrade(`/v1/inbox?ticket=${stale.ticket}`));

    // A real ticket whose stored row expired (clock moved on in the object): the object refuses it and deletes the row.
    const ticket = await ticketFor(alice);
    await runInDurableObject(userStub(alice.user), (_obj, state) => {
      state.storage.sql.exec("UPDATE tickets SET expires_at = ?", Date.now() - 1);
    });
    await expect401(await upgrade(`/v1/inbox?ticket=${ticket}`));
    expect(await rows(alice.user)).toEqual([]);

    // The store's own check at a later time, with the TTL injected.
    const verdict = await runInDurableObject(userStub(alice.user), async (_obj, state) => {
      const store = new TicketStore(new Sql(state.storage));
      const t0 = Date.now();
      const short = await store.issue(alice.user, alice.device, t0, SECRET, 5_000);
      const fresh = await store.issue(alice.user, alice.device, t0, SECRET, 10_000);
      const late = await store.consume(short.ticket, t0 + 5_000);
      return { late, inTime: await store.consume(fresh.ticket, t0 + 9_999), expiresIn: short.expires_in, left: store.count() };
    });
    expect(verdict).toEqual({ late: null, inTime: alice.device, expiresIn: 5, left: 0 });
  });

  it("forgetting a device drops its outstanding tickets only", async () => {
    const phone = await Device.of(uid("alice"), "phone");
    const laptop = await Device.of(phone.user, "laptop");
    const phoneTicket = await ticketFor(phone);
    const laptopTicket = await ticketFor(laptop);
    await runInDurableObject(userStub(phone.user), (_obj, state) => new TicketStore(new Sql(state.storage)).forgetDevice("phone"));
    await expect401(await upgrade(`/v1/inbox?ticket=${phoneTicket}`));
    const ok = await upgrade(`/v1/inbox?ticket=${laptopTicket}`);
    expect(ok.status).toBe(101);
    ok.webSocket!.close(1000, "done");
  });

  it("a ticket only on socket upgrades: not on other routes, not without Upgrade", async () => {
    const alice = await Device.of(uid("alice"));
    const ticket = await ticketFor(alice);
    for (const path of ["/v1/sync", "/v1/to-device", "/v1/sockets/ticket"]) {
      const res = await SELF.fetch(`${BASE}${path}?ticket=${ticket}`, { method: path.endsWith("ticket") ? "POST" : "GET", headers: { upgrade: "websocket" } });
      await expect401(res);
    }
    const plain = await SELF.fetch(`${BASE}/v1/inbox?ticket=${ticket}`);
    expect(plain.status).toBe(426);
    await plain.body?.cancel();
    // Still unused: the refusals above never reached the ticket store.
    const ok = await upgrade(`/v1/inbox?ticket=${ticket}`);
    expect(ok.status).toBe(101);
    ok.webSocket!.close(1000, "done");
  });

  it(`storage is bounded (${TUNING.maxTicketsPerUser} per user, oldest dropped) and holds no ticket or secret in the clear`, async () => {
    const alice = await Device.of(uid("alice"));
    const tickets: string[] = [];
    for (let i = 0; i < TUNING.maxTicketsPerUser + 5; i++) tickets.push(await ticketFor(alice));
    const stored = await rows(alice.user);
    expect(stored).toHaveLength(TUNING.maxTicketsPerUser);
    const dump = JSON.stringify(stored);
    for (const t of tickets) {
      expect(dump).not.toContain(t.split(".")[3]!);
      expect(dump).not.toContain(t.split(".")[4]!);
    }
    for (const row of stored) {
      expect(Object.keys(row).sort()).toEqual(["device_id", "expires_at", "ticket_hash"]);
      expect(row.ticket_hash).toMatch(/^[0-9a-f]{64}$/);
    }
    // The newest work; one of the dropped oldest does not.
    const newest = await upgrade(`/v1/inbox?ticket=${tickets.at(-1)!}`);
    expect(newest.status).toBe(101);
    newest.webSocket!.close(1000, "done");
    await expect401(await upgrade(`/v1/inbox?ticket=${tickets[0]!}`));
  }, 60_000);
});

/** A Sql that stores nothing: for minting a ticket with the wrong key, outside any object. */
function fakeSql(): Sql {
  return { run: () => 0, first: () => undefined, all: () => [], one: () => { throw new Error("no rows"); }, written: 0 } as unknown as Sql;
}
