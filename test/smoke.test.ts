import { describe, expect, it } from "vitest";
import { Device, request, uid } from "./helpers";

describe("smoke", () => {
  it("health", async () => {
    const res = await request("GET", "/healthz");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true });
  });
  it("create, send, page, sync", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const sent = await alice.send(conv, "hi");
    expect(sent.status).toBe(201);
    const page = await bob.get(`/v1/conversations/${conv}/messages?after=0`);
    expect(page.status).toBe(200);
    console.log(JSON.stringify(page.body));
    const sync = await bob.get(`/v1/sync`);
    console.log(JSON.stringify(sync.body));
  });
});
