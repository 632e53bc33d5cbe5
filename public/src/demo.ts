/**
 * Demo app: N devices side by side (alice/phone and bob/laptop by default),
 * each an OfflineClient over its own IndexedDB database. Everything shown comes
 * from what the SDK handed the app (exactly once) plus the SDK's outbox.
 *
 * Query parameters: conv (default "demo"), devices ("user:device,…"),
 * page (SDK page size). Tokens come from POST /dev/token (DEV_MODE only).
 */
import { IndexedDBStorage, OfflineClient, type ClientStatus, type EntryBatch, type JsonValue, type Message, type StorageOp } from "../../src/client";

type Stats = {
  delivered: number;
  duplicates: number;
  pokes: number;
};

interface DeviceView {
  user: string;
  device: string;
  client: OfflineClient;
  storage: IndexedDBStorage;
  messages: Map<number, Message>;
  stats: Stats;
  gaps: string[];
  /** Offline by the toggle (persisted, so a reload keeps it). */
  forcedOffline: boolean;
  log: string[];
  render(): void;
}

declare global {
  interface Window {
    demo: { conv: string; devices: DeviceView[]; ready: boolean; snapshot(): DemoSnapshot[] };
  }
}

export interface DemoSnapshot {
  user: string;
  device: string;
  status: ClientStatus;
  /** Message texts in seq order, then pending outbox texts. */
  texts: string[];
  pending: string[];
  seqs: number[];
  delivered: number;
  duplicates: number;
  outbox: number;
  received: number;
}

const params = new URLSearchParams(location.search);
const conv = params.get("conv") ?? "demo";
const pageSize = Number(params.get("page") ?? "100");
const deviceSpecs = (params.get("devices") ?? "alice:phone,bob:laptop")
  .split(",")
  .map((s) => s.split(":"))
  .map(([user, device]) => ({ user: user ?? "alice", device: device ?? "phone" }));

const $ = <T extends Element>(root: ParentNode, sel: string): T => {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`missing ${sel}`);
  return el;
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ""): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

function textOf(body: unknown): string {
  if (typeof body === "object" && body !== null && typeof (body as { text?: unknown }).text === "string") return (body as { text: string }).text;
  return JSON.stringify(body);
}

async function devToken(user: string, device: string): Promise<string> {
  const res = await fetch("/dev/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user, device }) });
  if (!res.ok) throw new Error(`POST /dev/token: ${res.status} (is DEV_MODE=true in .dev.vars?)`);
  return ((await res.json()) as { token: string }).token;
}

const msgKey = (seq: number) => `app:msg:${conv}:${String(seq).padStart(12, "0")}`;
const STATS_KEY = `app:stats:${conv}`;

async function createDevice(user: string, device: string, peers: string[], root: HTMLElement): Promise<DeviceView> {
  const storage = new IndexedDBStorage(`od-demo:${user}:${device}`);
  const token = await devToken(user, device);
  const offlineKey = `od-demo:offline:${user}:${device}`;

  // The app's own store, in the same IndexedDB as the SDK state: loaded once, then kept in memory.
  const messages = new Map<number, Message>();
  for (const key of await storage.keys(`app:msg:${conv}:`)) {
    const m = (await storage.get(key)) as Message | undefined;
    if (m) messages.set(m.seq, m);
  }
  const saved = (await storage.get(STATS_KEY)) as Stats | undefined;
  const stats: Stats = saved ?? { delivered: 0, duplicates: 0, pokes: 0 };

  const client = new OfflineClient({
    baseUrl: location.origin,
    token,
    storage,
    pageSize: Number.isInteger(pageSize) && pageSize > 0 ? Math.min(pageSize, 500) : 100,
    backoff: { baseMs: 250, maxMs: 5000 },
    syncIntervalMs: 30_000,
    // Exactly-once apply: these writes commit atomically with the SDK's cursor.
    onEntries: async (batch: EntryBatch): Promise<StorageOp[]> => {
      let dups = 0;
      for (const m of batch.messages) if ((await storage.get(msgKey(m.seq))) !== undefined) dups++;
      const next: Stats = { ...stats, delivered: stats.delivered + batch.messages.length, duplicates: stats.duplicates + dups };
      return [
        ...batch.messages.map((m): StorageOp => ({ op: "set", key: msgKey(m.seq), value: m as unknown as JsonValue })),
        { op: "set", key: STATS_KEY, value: next },
      ];
    },
    onReset: async ({ conversationId }) => {
      if (conversationId !== conv) return [];
      messages.clear();
      return (await storage.keys(`app:msg:${conv}:`)).map((key): StorageOp => ({ op: "delete", key }));
    },
    onToDevice: (entries) => {
      for (const e of entries) view.log.unshift(`to-device from ${e.from.user}/${e.from.device}: ${JSON.stringify(e.body)}`);
    },
  });

  const panel = el("section", { class: "device", id: `dev-${user}-${device}`, "data-user": user, "data-device": device });
  panel.innerHTML = `
    <div class="top">
      <h2>${user} / ${device}</h2>
      <span class="status" data-status="offline">offline</span>
      <label><input type="checkbox" class="online-toggle"> online</label>
    </div>
    <div class="stats">
      <span>received <b data-k="received">0</b></span><span>read <b data-k="read">0</b></span>
      <span>unread <b data-k="unread">0</b></span><span>head <b data-k="head">0</b></span>
      <span>server rcv <b data-k="server_received">0</b></span><span>outbox <b data-k="outbox">0</b></span>
      <span>delivered <b data-k="delivered">0</b></span><span>dups <b data-k="duplicates">0</b></span>
      <span>pokes <b data-k="pokes">0</b></span><span>gaps <b data-k="gaps">0</b></span>
      <span>push <b data-k="push">n/a</b></span><span>checkpoint <b data-k="checkpoint">-</b></span>
    </div>
    <ul class="messages"></ul>
    <form class="composer"><input name="text" placeholder="message" autocomplete="off"><button>send</button>
      <button type="button" class="nudge" title="to-device entry to the peer's devices">nudge</button></form>
    <div class="log"></div>`;
  root.append(panel);

  const toggle = $<HTMLInputElement>(panel, ".online-toggle");
  const list = $<HTMLUListElement>(panel, ".messages");
  const statusEl = $<HTMLSpanElement>(panel, ".status");
  const logEl = $<HTMLDivElement>(panel, ".log");
  const stat = (k: string, v: string | number) => {
    $<HTMLElement>(panel, `[data-k="${k}"]`).textContent = String(v);
  };

  let frame = 0;
  const view: DeviceView = {
    user,
    device,
    client,
    storage,
    messages,
    stats,
    gaps: [],
    forcedOffline: localStorage.getItem(offlineKey) === "1",
    log: [],
    render() {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        const s = client.conversation(conv);
        stat("received", s?.received ?? 0);
        stat("read", s?.read ?? 0);
        stat("unread", s?.unread ?? 0);
        stat("head", s?.head_seq ?? 0);
        stat("server_received", s?.server_received ?? 0);
        stat("outbox", client.outbox().length);
        stat("delivered", stats.delivered);
        stat("duplicates", stats.duplicates);
        stat("pokes", stats.pokes);
        stat("gaps", s?.gaps.length ?? 0);
        stat("checkpoint", client.checkpoint ?? "-");
        statusEl.textContent = client.status;
        statusEl.dataset.status = client.status;
        const items: HTMLElement[] = [];
        const logged = new Set<string>();
        for (const m of [...messages.values()].sort((a, b) => a.seq - b.seq)) {
          const mine = m.sender.user === user;
          if (m.client_msg_id && m.sender.device === device) logged.add(m.client_msg_id);
          const li = el("li", { class: `msg ${m.type}${mine ? " mine" : ""}`, "data-seq": String(m.seq) });
          li.append(el("span", { class: "seq" }, `#${m.seq} ${m.type === "message" ? m.sender.user : ""}`));
          li.append(el("span", { class: "text" }, m.type === "message" ? textOf(m.body) : `members: ${JSON.stringify(m.body)}`));
          items.push(li);
        }
        for (const g of s?.gaps ?? []) items.push(el("li", { class: "gap" }, `gap ${g.from}..${g.to} (${g.reason})`));
        for (const o of client.outbox()) {
          if (o.conversation_id !== conv || logged.has(o.client_msg_id)) continue;
          const li = el("li", { class: "msg mine pending", "data-cmid": o.client_msg_id });
          li.append(el("span", { class: "seq" }, "pending"));
          li.append(el("span", { class: "text" }, textOf(o.body)));
          items.push(li);
        }
        const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 20;
        list.replaceChildren(...items);
        if (atBottom) list.scrollTop = list.scrollHeight;
        logEl.textContent = view.log.slice(0, 30).join("\n");
      });
    },
  };

  const note = (line: string) => {
    view.log.unshift(`${new Date().toISOString().slice(11, 23)} ${line}`);
    view.render();
  };

  client.on("delivered", (batch) => {
    if (batch.conversationId !== conv) return;
    for (const m of batch.messages) {
      if (messages.has(m.seq)) stats.duplicates++;
      messages.set(m.seq, m);
    }
    stats.delivered += batch.messages.length;
    const last = batch.messages[batch.messages.length - 1];
    // The conversation is on screen: what arrived counts as read.
    if (last && !document.hidden) void client.markRead(conv, Math.max(...batch.messages.map((m) => m.seq)));
    view.render();
  });
  client.on("conversation", () => view.render());
  client.on("outbox", () => view.render());
  client.on("status", (st) => note(`status ${st}`));
  client.on("poke", (p) => {
    stats.pokes++;
    note(`poke ${p.conversation_id} head=${p.head_seq}`);
  });
  client.on("sent", (s) => note(`sent ${s.clientMsgId} → #${s.seq}${s.duplicate ? " (duplicate)" : ""} via ${s.via}`));
  client.on("sendFailed", (f) => note(`send failed ${f.item.client_msg_id}: ${f.error.message}`));
  client.on("reset", (r) => note(`epoch reset ${r.conversationId}: ${r.oldEpoch} → ${r.newEpoch}`));
  client.on("retry", (r) => note(`retry in ${r.delayMs} ms (${r.error instanceof Error ? r.error.message : String(r.error)})`));
  client.on("error", (e) => note(`error: ${e instanceof Error ? e.message : String(e)}`));
  client.on("socket", (s) => note(`${s.conversationId ? "live" : "inbox"} socket ${s.open ? "open" : "closed"}`));

  const apply = () => {
    const want = !view.forcedOffline && navigator.onLine;
    if (want && !client.online) void client.start();
    if (!want && client.online) client.stop();
    toggle.checked = !view.forcedOffline;
    view.render();
  };
  toggle.addEventListener("change", () => {
    view.forcedOffline = !toggle.checked;
    localStorage.setItem(offlineKey, view.forcedOffline ? "1" : "0");
    apply();
  });
  // The browser's own connectivity (DevTools / Playwright setOffline) also takes the device offline.
  window.addEventListener("offline", apply);
  window.addEventListener("online", apply);

  $<HTMLFormElement>(panel, "form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $<HTMLInputElement>(panel, "input[name=text]");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    client.send(conv, { text }).catch((e: unknown) => note(`send refused: ${String(e)}`));
  });
  $<HTMLButtonElement>(panel, ".nudge").addEventListener("click", () => {
    for (const peer of peers) {
      client.sendToDevice({ user: peer, body: { nudge: `from ${user}/${device}` } }).then(
        (r) => note(`nudge → ${peer}: queued ${r.queued}`),
        (e: unknown) => note(`nudge failed: ${String(e)}`),
      );
    }
  });

  // Pushes arriving: the local receiver lists what the Worker sent; a device gets them while it is offline.
  const pushToken = `demo-${user}-${device}`;
  let pushesSeen = 0;
  const pollPushes = async () => {
    try {
      const res = await fetch(`${location.protocol}//${location.hostname}:8789/pushes`);
      const pushes = ((await res.json()) as PushSeen[]).filter((p) => p.token === pushToken);
      if (pushes.length > pushesSeen) {
        const p = pushes[0]!;
        note(`push: conversation ${p.conversation_id} head ${p.head_seq}, ${p.unread} unread`);
      }
      pushesSeen = pushes.length;
      stat("push", String(pushesSeen));
    } catch {
      stat("push", "no receiver");
    }
  };
  setInterval(() => void pollPushes(), 2000);

  await client.ready();
  client.show(conv);
  if (navigator.onLine && !view.forcedOffline) {
    // Best effort: register the device and make sure the conversation exists (409 = someone else made it).
    // A webhook push target: `npm start` runs the receiver the Worker posts to (scripts/push-receiver.mjs).
    await client.registerDevice({ provider: "webhook", token: pushToken }).catch((e: unknown) => note(`register: ${String(e)}`));
    await client.createConversation({ id: conv, members: peers }).catch((e: unknown) => note(`create: ${e instanceof Error ? e.message : String(e)}`));
  }
  apply();
  return view;
}

/** What scripts/push-receiver.mjs lists at GET /pushes (the webhook body plus when it arrived). */
interface PushSeen {
  token: string;
  conversation_id: string;
  head_seq: number;
  unread: number;
}

async function main(): Promise<void> {
  const root = $<HTMLElement>(document, "#devices");
  const users = [...new Set(deviceSpecs.map((d) => d.user))];
  const peersOf = (user: string) => {
    const others = users.filter((u) => u !== user);
    // A single-device page (e2e) still needs the peer in the conversation.
    return others.length > 0 ? others : (params.get("peers") ?? "").split(",").filter(Boolean);
  };
  const devices: DeviceView[] = [];
  for (const d of deviceSpecs) devices.push(await createDevice(d.user, d.device, peersOf(d.user), root));
  window.demo = {
    conv,
    devices,
    ready: true,
    snapshot: () =>
      devices.map((v) => {
        const sorted = [...v.messages.values()].filter((m) => m.type === "message").sort((a, b) => a.seq - b.seq);
        const logged = new Set(sorted.filter((m) => m.sender.device === v.device && m.sender.user === v.user).map((m) => m.client_msg_id));
        const pending = v.client.outbox().filter((o) => o.conversation_id === conv && !logged.has(o.client_msg_id)).map((o) => textOf(o.body));
        return {
          user: v.user,
          device: v.device,
          status: v.client.status,
          texts: [...sorted.map((m) => textOf(m.body)), ...pending],
          pending,
          seqs: [...v.messages.keys()].sort((a, b) => a - b),
          delivered: v.stats.delivered,
          duplicates: v.stats.duplicates,
          outbox: v.client.outbox().length,
          received: v.client.conversation(conv)?.received ?? 0,
        };
      }),
  };
  $<HTMLElement>(document, "#boot").textContent = `conversation "${conv}" · page size ${pageSize}`;
}

main().catch((err: unknown) => {
  const boot = document.querySelector("#boot");
  if (boot) boot.textContent = `failed to start: ${err instanceof Error ? err.message : String(err)}`;
  console.error(err);
});
