/**
 * Shared setup of the client SDK tests (test/client*.test.ts): the SDK talks
 * to the real Worker (fetch = SELF.fetch, sockets upgrade through SELF.fetch);
 * faults are injected in the fetch and socket factory it is given.
 */
import { SELF } from "cloudflare:test";
import { fetchSocketFactory, OfflineClient, type ClientOptions, type ClientSocket, type ClientStorage, type EntryBatch, type SocketFactory, type StorageOp } from "../src/client";
import { BASE, Device, flush, sendMany, sleep, uid } from "./helpers";

export const selfFetch = (req: Request) => SELF.fetch(req);

/** Records what the app's handler saw, as an app would store it. */
export class Recorder {
  readonly batches: EntryBatch[] = [];
  get seqs(): number[] {
    return this.batches.flatMap((b) => b.messages.map((m) => m.seq));
  }
  readonly onEntries = (batch: EntryBatch): StorageOp[] => {
    this.batches.push(batch);
    // Stored in the same atomic batch as the SDK's cursor: exactly-once apply.
    return batch.messages.map((m) => ({ op: "set", key: `app:msg:${batch.conversationId}:${m.seq}`, value: m.seq }));
  };
}

/**
 * An HTTP-only client with fast retries; `opts` overrides anything. Timelines
 * are off unless a test asks, so the v1 paths (newest page, backfill) stay
 * covered as they are.
 */
export function client(dev: Device, storage: ClientStorage, opts: Partial<ClientOptions> = {}): OfflineClient {
  return new OfflineClient({
    baseUrl: BASE,
    token: dev.jwt,
    storage,
    fetch: selfFetch,
    socketFactory: null,
    inbox: false,
    syncIntervalMs: 0,
    backoff: { baseMs: 10, maxMs: 50 },
    timelineLimit: 0,
    ...opts,
  });
}

/** Sets up alice + bob in a fresh conversation, with `count` messages from alice. head = count + 1. */
export async function fixture(count: number) {
  const alice = await Device.of(uid("alice"));
  const bob = await Device.of(uid("bob"), "laptop");
  const conv = await alice.createConversation([bob.user]);
  await sendMany(alice, conv, count);
  await flush(conv);
  return { alice, bob, conv };
}

export function sorted(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

export async function serverReceived(dev: Device, conv: string): Promise<number | undefined> {
  return (await dev.syncEntry(conv))?.received;
}

export async function until(pred: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(20);
  }
}

/** A fetch that records every request (method and URL) before passing it to the Worker. */
export function loggingFetch(inner: (req: Request) => Promise<Response> = selfFetch) {
  const requests: Array<{ method: string; url: URL }> = [];
  const fetch = (req: Request) => {
    requests.push({ method: req.method, url: new URL(req.url) });
    return inner(req);
  };
  return { fetch, requests };
}

/** A socket factory whose sockets the test can cut, and that records the URLs it opened. */
export function cuttable() {
  const open: ClientSocket[] = [];
  const urls: URL[] = [];
  const base = fetchSocketFactory(selfFetch);
  const factory: SocketFactory = async (url, handlers) => {
    urls.push(new URL(url));
    const s = await base(url, handlers);
    open.push(s);
    return s;
  };
  return { factory, open, urls };
}
