/**
 * Demo app: N devices side by side (alice/phone and bob/laptop by default),
 * each an OfflineClient over its own IndexedDB database, drawn as a messaging
 * app: a chat list (newest activity first, unread badges, the newest message)
 * and the open conversation (bubbles, member sentences, gap lines, receipt
 * ticks). The figures behind it (cursors, checkpoint, gaps, outbox) sit in a
 * collapsible "Details" panel per device. Everything shown comes from what the
 * SDK handed the app (exactly once) plus the SDK's outbox and receipts.
 *
 * Query parameters: conv (the conversation the page makes sure exists and
 * opens; default "demo"), devices ("user:device,…"), peers (the other members
 * when the page shows one user), page (SDK page size), receiver (the push
 * receiver's port; default this page's port + 2, as `npm start` runs it;
 * "off" = none), api (the API origin when the page is served from another one;
 * default this page's). Tokens come from POST /dev/token (DEV_MODE only).
 */
import {
  HttpError,
  IndexedDBStorage,
  OfflineClient,
  formatReceipt,
  type ClientStatus,
  type ConversationState,
  type EntryBatch,
  type JsonValue,
  type Message,
  type OutboxItem,
  type ReceiptInfo,
  type StorageOp,
  type SyncResponse,
  type TokenProvider,
} from "../../src/client";
import { $, h, icon, reconcile, type Keyed } from "./dom";
import {
  avatarColour,
  chatName,
  clock,
  dayKey,
  dayLabel,
  fullTime,
  gapLine,
  initials,
  listTime,
  memberSentence,
  membersFromLog,
  mergeGaps,
  names,
  partialRead,
  receiptState,
  receiptTitle,
  textOf,
  type ReceiptState,
} from "./format";

/** Per conversation, persisted with the entries (exactly-once bookkeeping). */
type Stats = {
  delivered: number;
  duplicates: number;
};

interface DeviceView {
  user: string;
  device: string;
  client: OfflineClient;
  storage: IndexedDBStorage;
  /** The app's own store: conversation id → seq → entry. */
  messages: Map<string, Map<number, Message>>;
  statsOf(id: string): Stats;
  pokes: number;
  /** The conversation on screen (null: the chat list only). */
  openId: string | null;
  /** Offline by the toggle (persisted, so a reload keeps it). */
  forcedOffline: boolean;
  log: string[];
  chats(): ChatRow[];
  open(id: string | null, opts?: { focus?: boolean }): void;
  render(): void;
}

/** One row of the chat list, as the demo computes it. */
export interface ChatRow {
  id: string;
  name: string;
  /** ms since epoch of the newest activity (message, member change, or a message waiting to go). */
  at: number;
  atIso: string | null;
  unread: number;
  preview: string;
  /** The preview is the user's own message: its ticks. */
  receipt: ReceiptState | null;
  left: boolean;
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
  /** Message texts of `conv` in seq order, then pending outbox texts. */
  texts: string[];
  pending: string[];
  seqs: number[];
  delivered: number;
  duplicates: number;
  outbox: number;
  received: number;
  /** The conversation on screen. */
  open: string | null;
  /** The chat list as computed (the DOM shows the same, in this order). */
  chats: { id: string; unread: number; preview: string; receipt: ReceiptState | null }[];
  authRequired: boolean;
}

const params = new URLSearchParams(location.search);
// The API's origin: this page's, or `api=` for a page served from another origin (CORS, ALLOWED_ORIGINS).
const apiBase = params.get("api") ?? location.origin;
const conv = params.get("conv") ?? "demo";
const pageSize = Number(params.get("page") ?? "100");
const deviceSpecs = (params.get("devices") ?? "alice:phone,bob:laptop")
  .split(",")
  .map((s) => s.split(":"))
  .map(([user, device]) => ({ user: user || "alice", device: device || "phone" }));
/** GET /pushes of the local push receiver (scripts/push-receiver.mjs): `npm start` runs it on PORT+2 unless told otherwise. */
const receiverPort = params.get("receiver") ?? (location.port ? String(Number(location.port) + 2) : "off");
const pushesUrl = /^\d{1,5}$/.test(receiverPort) ? `${location.protocol}//${location.hostname}:${receiverPort}/pushes` : null;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

async function devToken(user: string, device: string): Promise<string> {
  const res = await fetch(`${apiBase}/dev/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user, device }) });
  if (!res.ok) throw new Error(`POST /dev/token: ${res.status} (is DEV_MODE=true in .dev.vars?)`);
  return ((await res.json()) as { token: string }).token;
}

const MSG_PREFIX = "app:msg:";
const msgKey = (id: string, seq: number) => `${MSG_PREFIX}${id}:${String(seq).padStart(12, "0")}`;
const STATS_PREFIX = "app:stats:";
const statsKey = (id: string) => `${STATS_PREFIX}${id}`;

/** Figures of the Details panel: key (data-k), label, one line of legend. */
const FIGURES: [key: string, label: string, legend: string][] = [
  ["received", "received", "Delivery watermark: every entry up to this seq is on this device."],
  ["server_received", "server_received", "The same watermark as the server last confirmed it."],
  ["read", "read", "Read cursor: how far you have read, shared by all your devices."],
  ["unread", "unread", "Messages from others after the read cursor (the chat list's badge)."],
  ["head", "head", "The newest seq in the conversation's log."],
  ["gaps", "gaps", "Seq ranges this device will never get (retention, not a member); listed below."],
  ["outbox", "outbox", "Messages written here that the server has not confirmed yet; listed below."],
  ["checkpoint", "checkpoint", "Where the next sync resumes: it asks only for what changed since."],
  ["delivered", "delivered", "Entries of this conversation handed to the app, each once."],
  ["duplicates", "duplicates", "Entries handed to the app a second time: must stay 0."],
  ["pokes", "pokes", "Inbox socket nudges (“a conversation has new entries”) since the page loaded."],
  ["push", "push", "Wake-up pushes sent to this device while it was offline (local receiver)."],
];

const STATUS_TEXT: Record<ClientStatus, string> = { online: "online", connecting: "connecting…", offline: "offline", auth_required: "signed out" };

async function createDevice(user: string, device: string, peers: string[], root: HTMLElement): Promise<DeviceView> {
  const storage = new IndexedDBStorage(`od-demo:${user}:${device}`);
  const offlineKey = `od-demo:offline:${user}:${device}`;
  const domId = `dev-${user}-${device}`;

  // The device's session: a dev token, silently renewed while signed in; "End session" (Details) signs out.
  const session = { token: await devToken(user, device), signedIn: true };
  const token: TokenProvider = async ({ forceRefresh }) => {
    if (!session.signedIn) throw new Error("signed out: this device needs a new token");
    if (forceRefresh) session.token = await devToken(user, device);
    return session.token;
  };

  // The app's own store, in the same IndexedDB as the SDK state: loaded once, then kept in memory.
  const messages = new Map<string, Map<number, Message>>();
  const entriesOf = (id: string) => {
    let m = messages.get(id);
    if (!m) messages.set(id, (m = new Map()));
    return m;
  };
  for (const key of await storage.keys(MSG_PREFIX)) {
    const m = (await storage.get(key)) as Message | undefined;
    if (m) entriesOf(key.slice(MSG_PREFIX.length, key.lastIndexOf(":"))).set(m.seq, m);
  }
  const stats = new Map<string, Stats>();
  for (const key of await storage.keys(STATS_PREFIX)) {
    const s = (await storage.get(key)) as Partial<Stats> | undefined;
    stats.set(key.slice(STATS_PREFIX.length), { delivered: s?.delivered ?? 0, duplicates: s?.duplicates ?? 0 });
  }
  const statsOf = (id: string): Stats => {
    let s = stats.get(id);
    if (!s) stats.set(id, (s = { delivered: 0, duplicates: 0 }));
    return s;
  };

  const client = new OfflineClient({
    baseUrl: apiBase,
    token,
    storage,
    pageSize: Number.isInteger(pageSize) && pageSize > 0 ? Math.min(pageSize, 500) : 100,
    backoff: { baseMs: 250, maxMs: 5000 },
    syncIntervalMs: 30_000,
    // Exactly-once apply: these writes commit atomically with the SDK's cursor.
    // The counters are read from storage (not memory), so they count what was committed.
    onEntries: async (batch: EntryBatch): Promise<StorageOp[]> => {
      const id = batch.conversationId;
      let dups = 0;
      for (const m of batch.messages) if ((await storage.get(msgKey(id, m.seq))) !== undefined) dups++;
      const prev = ((await storage.get(statsKey(id))) as Stats | undefined) ?? { delivered: 0, duplicates: 0 };
      const next: Stats = { delivered: prev.delivered + batch.messages.length, duplicates: prev.duplicates + dups };
      return [
        ...batch.messages.map((m): StorageOp => ({ op: "set", key: msgKey(id, m.seq), value: m as unknown as JsonValue })),
        { op: "set", key: statsKey(id), value: next },
      ];
    },
    onReset: async ({ conversationId }) => {
      messages.get(conversationId)?.clear();
      members.delete(conversationId);
      return (await storage.keys(`${MSG_PREFIX}${conversationId}:`)).map((key): StorageOp => ({ op: "delete", key }));
    },
    onToDevice: (entries) => {
      for (const e of entries) {
        note(`to-device from ${e.from.user}/${e.from.device}: ${JSON.stringify(e.body)}`);
        toast("hand", `${e.from.user} nudged you`, `from ${e.from.user}'s ${e.from.device}, through the to-device queue`);
      }
    },
  });

  // ---------------------------------------------------------------- DOM

  const panel = h("section", { class: "device", id: domId, "data-user": user, "data-device": device, "aria-labelledby": `${domId}-title` });
  const toggle = h("input", { type: "checkbox", role: "switch", class: "online-toggle", "aria-describedby": `${domId}-status` });
  const statusEl = h("span", { class: "status", id: `${domId}-status`, "data-status": "offline" }, "offline");
  const meAvatar = avatar(user, "me");
  panel.append(
    h(
      "header",
      { class: "device-bar" },
      meAvatar,
      h("div", { class: "who" }, h("h2", { id: `${domId}-title` }, user), h("span", { class: "device-name" }, `on ${device}`)),
      statusEl,
      h("label", { class: "switch", title: "Take this device online or offline" }, toggle, h("span", { class: "track", "aria-hidden": "true" }), h("span", { class: "switch-text" }, "Online")),
    ),
  );

  const renewBtn = h("button", { type: "button", class: "renew-token" }, "Get a new token");
  const banner = h(
    "div",
    { class: "auth-banner", role: "alert", hidden: true },
    icon("key"),
    h("p", {}, h("strong", {}, "Signed out. "), "The server no longer accepts this device's token. What you write stays here and is sent once you are back."),
    renewBtn,
  );
  const toasts = h("div", { class: "toasts", "aria-live": "polite" });
  panel.append(banner, toasts);

  const newChatBtn = h("button", { type: "button", class: "icon-button new-chat", "aria-label": "New chat", title: "New chat" }, icon("plus"));
  const chatList = h("ul", { class: "chat-list", "aria-labelledby": `${domId}-chats` });
  const chatsEmpty = h("p", { class: "chats-empty", hidden: true }, "No chats yet. Start one with +.");
  const chatsNav = h(
    "nav",
    { class: "chats", "aria-labelledby": `${domId}-chats` },
    h("div", { class: "chats-head" }, h("h3", { id: `${domId}-chats` }, "Chats"), newChatBtn),
    chatList,
    chatsEmpty,
  );

  const backBadge = h("span", { class: "back-badge", hidden: true });
  const backBtn = h("button", { type: "button", class: "icon-button back", "aria-label": "Back to chats" }, icon("back"), backBadge);
  const chatAvatarSlot = h("span", { class: "avatar-slot" });
  const chatTitle = h("h3", { class: "chat-title", id: `${domId}-chat-title` });
  const chatSub = h("p", { class: "chat-sub" });
  const list = h("ol", { class: "messages" });
  const scroller = h("div", { class: "scroller", role: "region", "aria-label": "Messages", tabindex: "0" }, list);
  const input = h("input", { id: `${domId}-input`, name: "text", placeholder: "Message", autocomplete: "off", enterkeyhint: "send", maxlength: "4000" });
  const composer = h(
    "form",
    { class: "composer" },
    h("label", { for: `${domId}-input`, class: "visually-hidden" }, "Message"),
    input,
    h("button", { type: "submit", class: "send", "aria-label": "Send", title: "Send" }, icon("send")),
  );
  const composerNote = h("p", { class: "composer-note", hidden: true });
  const chatSection = h(
    "section",
    { class: "chat", "aria-labelledby": `${domId}-chat-title` },
    h("header", { class: "chat-head" }, backBtn, chatAvatarSlot, h("div", { class: "chat-head-text" }, chatTitle, chatSub)),
    scroller,
    composerNote,
    composer,
  );
  const noChat = h("div", { class: "no-chat" }, icon("chat"), h("p", {}, "Pick a chat to read it."));
  const body = h("div", { class: "device-body", "data-view": "chat" }, chatsNav, chatSection, noChat);
  panel.append(body);

  // Details: the figures behind the screen.
  const figures = h("dl", { class: "figures" });
  for (const [key, label, legend] of FIGURES) {
    figures.append(h("div", { class: "figure" }, h("dt", {}, label), h("dd", {}, h("b", { "data-k": key }, "0"), h("span", { class: "legend" }, legend))));
  }
  const scopeName = h("strong", { class: "scope-name" });
  const gapList = h("ul", { class: "gap-list" });
  const outboxList = h("ol", { class: "outbox-list" });
  const nudgeBtn = h("button", { type: "button", class: "nudge", title: "A to-device entry for each of the peers' devices" }, icon("hand"), `Nudge ${peers.length > 0 ? names(peers, user) : "peers"}`);
  const expireBtn = h("button", { type: "button", class: "expire-token", title: "The token provider stops giving tokens, as when a session ends" }, icon("key"), "End session");
  const logEl = h("pre", { class: "log" });
  const details = h(
    "details",
    { class: "details" },
    h("summary", {}, h("span", { class: "summary-title" }, "Details"), h("span", { class: "summary-hint" }, "cursors, checkpoint, gaps, outbox")),
    h(
      "div",
      { class: "details-body" },
      h("p", { class: "scope" }, "Cursors of ", scopeName, "; the checkpoint, outbox, pokes and pushes are this device's."),
      figures,
      h("div", { class: "lists" }, h("section", {}, h("h4", {}, "Gaps"), gapList), h("section", {}, h("h4", {}, "Outbox"), outboxList)),
      h("div", { class: "actions" }, nudgeBtn, expireBtn),
      h("h4", {}, "Event log"),
      logEl,
    ),
  );
  panel.append(details);

  const dialog = newChatDialog();
  panel.append(dialog.el);
  root.append(panel);

  const stat = (k: string, v: string | number) => {
    $<HTMLElement>(panel, `[data-k="${k}"]`).textContent = String(v);
  };

  // ---------------------------------------------------------------- model

  /** Members by conversation, from GET /v1/conversations/:id (current members). */
  const members = new Map<string, string[]>();
  const membersAsked = new Set<string>();
  /** Confirmed sends whose log entry has not arrived yet: shown as sent, never twice. */
  const sentNotLogged = new Map<string, { conversationId: string; seq: number; item: OutboxItem }>();
  /** Outbox items by client_msg_id, kept so a confirmed one still has its text until its entry arrives. */
  const outboxSeen = new Map<string, OutboxItem>();
  /** Where the "unread" divider goes in the open conversation: the read cursor when it opened. */
  let unreadFrom: number | null = null;
  const receiptsAsked = new Map<string, number>();

  const entriesSorted = (id: string) => [...(messages.get(id)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
  const loggedCmids = (id: string) => {
    const out = new Set<string>();
    for (const m of messages.get(id)?.values() ?? []) if (m.client_msg_id && m.sender.user === user && m.sender.device === device) out.add(m.client_msg_id);
    return out;
  };
  const pendingOf = (id: string) => {
    const logged = loggedCmids(id);
    return client.outbox().filter((o) => o.conversation_id === id && !logged.has(o.client_msg_id));
  };
  const membersOf = (id: string) => members.get(id) ?? membersFromLog(messages.get(id)?.values() ?? []);
  const receiptOf = (id: string, seq: number): [ReceiptState, ReceiptInfo | undefined] => {
    const r = client.receiptFor(id, seq);
    return [receiptState(r), r];
  };

  /**
   * Unread messages from others after the read cursor. Counted from the
   * entries the app holds when it holds every entry above the cursor (the
   * common case: timelines bring the newest); otherwise the server's count.
   */
  function unreadOf(s: ConversationState): number {
    if (s.read >= s.head_seq) return 0;
    let local = 0;
    for (const m of messages.get(s.id)?.values() ?? []) if (m.type === "message" && m.seq > s.read && m.sender.user !== user) local++;
    let missingTop = s.received < s.head_seq && s.above.length === 0 ? s.head_seq : 0;
    let edge = s.received;
    for (const [from, to] of s.above) {
      if (from > edge + 1) missingTop = Math.max(missingTop, from - 1);
      edge = Math.max(edge, to);
    }
    if (edge < s.head_seq) missingTop = s.head_seq;
    return missingTop <= s.read ? local : Math.max(local, s.unread);
  }

  function chats(): ChatRow[] {
    const ids = new Set<string>([...client.conversations().filter((s) => s.membership !== null || s.epoch !== null).map((s) => s.id)]);
    for (const [id, m] of messages) if (m.size > 0) ids.add(id);
    for (const o of client.outbox()) ids.add(o.conversation_id);
    const rows: ChatRow[] = [];
    for (const id of ids) {
      const s = client.conversation(id);
      const entries = entriesSorted(id);
      const last = entries[entries.length - 1];
      const pending = pendingOf(id);
      const lastPending = pending[pending.length - 1];
      let atIso = s?.last_activity_at ?? null;
      const later = (iso: string | undefined | null) => {
        if (iso && (!atIso || Date.parse(iso) > Date.parse(atIso))) atIso = iso;
      };
      later(last?.created_at);
      later(lastPending?.created_at);
      let preview = "No messages yet";
      let receipt: ReceiptState | null = null;
      const group = membersOf(id).length > 2;
      if (lastPending) {
        preview = `You: ${textOf(lastPending.body)}`;
        receipt = "pending";
      } else if (last) {
        if (last.type === "member") preview = memberSentence(last.body, user);
        else if (last.sender.user === user) {
          preview = `You: ${textOf(last.body)}`;
          receipt = receiptOf(id, last.seq)[0];
        } else preview = group ? `${last.sender.user}: ${textOf(last.body)}` : textOf(last.body);
      }
      const left = s?.membership === "left";
      if (left) preview = "You are no longer a member";
      rows.push({ id, name: chatName(id), at: atIso ? Date.parse(atIso) : 0, atIso, unread: s && id !== view.openId ? unreadOf(s) : 0, preview, receipt, left });
    }
    return rows.sort((a, b) => b.at - a.at || a.id.localeCompare(b.id));
  }

  // ---------------------------------------------------------------- render

  let frame = 0;
  const view: DeviceView = {
    user,
    device,
    client,
    storage,
    messages,
    statsOf,
    pokes: 0,
    openId: null,
    forcedOffline: localStorage.getItem(offlineKey) === "1",
    log: [],
    chats,
    open,
    render() {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        draw();
      });
    },
  };

  function draw(): void {
    const status = client.status;
    statusEl.textContent = STATUS_TEXT[status];
    statusEl.dataset.status = status;
    toggle.checked = !view.forcedOffline;
    banner.hidden = !(client.authRequired || status === "auth_required");
    const rows = chats();
    drawChatList(rows);
    drawChat(rows);
    drawDetails();
  }

  function drawChatList(rows: ChatRow[]): void {
    const tabbable = rows.find((r) => r.id === view.openId)?.id ?? rows[0]?.id;
    const items: Keyed[] = rows.map((r) => {
      const current = r.id === view.openId;
      return {
        key: r.id,
        sig: JSON.stringify([r.name, r.atIso, r.unread, r.preview, r.receipt, r.left, current, r.id === tabbable]),
        make: () => {
          const time = r.atIso ? h("time", { class: "chat-time", datetime: r.atIso, title: fullTime(r.atIso) }, listTime(r.atIso)) : null;
          const badge = r.unread > 0 ? h("span", { class: "badge", "aria-label": `${r.unread} unread` }, String(r.unread > 99 ? "99+" : r.unread)) : null;
          const button = h(
            "button",
            {
              type: "button",
              class: "chat-row",
              "data-conv": r.id,
              "data-unread": r.unread,
              "aria-current": current ? "true" : false,
              tabindex: r.id === tabbable ? "0" : "-1",
            },
            avatar(r.name),
            h(
              "span",
              { class: "chat-main" },
              h("span", { class: "chat-top" }, h("span", { class: "chat-name" }, r.name), time),
              h("span", { class: "chat-bottom" }, r.receipt ? tick(r.receipt, undefined) : null, h("span", { class: `chat-preview${r.left ? " left" : ""}` }, r.preview), badge),
            ),
          );
          return h("li", { class: r.unread > 0 ? "unread" : false }, button);
        },
      };
    });
    reconcile(chatList, items);
    chatsEmpty.hidden = rows.length > 0;
    const others = rows.filter((r) => r.id !== view.openId).reduce((n, r) => n + (r.unread > 0 ? 1 : 0), 0);
    backBadge.hidden = others === 0;
    backBadge.textContent = String(others);
    backBtn.setAttribute("aria-label", others > 0 ? `Back to chats (${others} with unread messages)` : "Back to chats");
  }

  function drawChat(rows: ChatRow[]): void {
    const id = view.openId;
    body.dataset.view = id ? "chat" : "list";
    chatSection.hidden = !id;
    noChat.hidden = !!id;
    if (!id) {
      reconcile(list, []);
      return;
    }
    const s = client.conversation(id);
    const row = rows.find((r) => r.id === id);
    const people = membersOf(id);
    const group = people.length > 2;
    chatTitle.textContent = chatName(id);
    if (chatAvatarSlot.dataset.for !== id) {
      chatAvatarSlot.replaceChildren(avatar(chatName(id)));
      chatAvatarSlot.dataset.for = id;
    }
    chatSub.textContent = row?.left ? "you are no longer a member" : people.length > 0 ? names(people, user) : "";
    const left = s?.membership === "left";
    composer.hidden = left;
    composerNote.hidden = !left;
    composerNote.textContent = left ? "You can't send messages here: you are no longer a member." : "";

    // Entries, gaps and messages waiting to go, in log order.
    type Row = { at: number; iso: string | null; item: Keyed };
    const out: Row[] = [];
    const entries = entriesSorted(id);
    let dividerDone = unreadFrom === null;
    let prevSender: string | null = null;
    for (const m of entries) {
      if (!dividerDone && m.type === "message" && m.sender.user !== user && m.seq > unreadFrom!) {
        dividerDone = true;
        const n = entries.filter((e) => e.type === "message" && e.sender.user !== user && e.seq > unreadFrom!).length;
        out.push({ at: m.seq - 0.5, iso: m.created_at, item: { key: `${id}:unread`, sig: String(n), make: () => h("li", { class: "unread-divider", role: "separator" }, h("span", {}, n === 1 ? "1 unread message" : `${n} unread messages`)) } });
      }
      if (m.type === "member") {
        prevSender = null;
        const text = memberSentence(m.body, user);
        out.push({ at: m.seq, iso: m.created_at, item: { key: `${id}:s${m.seq}:${m.msg_id}`, sig: text, make: () => h("li", { class: "msg member", "data-seq": m.seq }, h("p", { class: "sentence" }, text)) } });
        continue;
      }
      const mine = m.sender.user === user;
      const [state, r] = mine ? receiptOf(id, m.seq) : ["sent" as const, undefined];
      const showSender = group && !mine && prevSender !== m.sender.user;
      prevSender = m.sender.user;
      const extra = mine ? partialRead(r) : null;
      out.push({
        at: m.seq,
        iso: m.created_at,
        item: {
          key: `${id}:s${m.seq}:${m.msg_id}`,
          sig: JSON.stringify([mine, state, r ? [r.members, r.delivered.users, r.read.users] : null, showSender]),
          make: () => bubble({ seq: m.seq, cmid: m.client_msg_id, mine, text: textOf(m.body), iso: m.created_at, sender: showSender ? m.sender.user : null, state: mine ? state : null, r, extra }),
        },
      });
    }
    for (const g of mergeGaps(s?.gaps ?? [])) {
      const text = gapLine(g);
      out.push({ at: g.from - 0.25, iso: null, item: { key: `${id}:g${g.from}-${g.to}`, sig: text, make: () => h("li", { class: "gap", "data-from": g.from, "data-to": g.to, "data-reason": g.reason }, h("p", {}, text)) } });
    }
    // Confirmed, entry not here yet (a summary brings it): shown once, as sent.
    const logged = loggedCmids(id);
    for (const [cmid, x] of sentNotLogged) {
      if (x.conversationId !== id) continue;
      if (logged.has(cmid)) {
        sentNotLogged.delete(cmid);
        continue;
      }
      const [state, r] = receiptOf(id, x.seq);
      out.push({
        at: x.seq,
        iso: x.item.created_at,
        item: { key: `${id}:c${cmid}`, sig: state, make: () => bubble({ seq: x.seq, cmid, mine: true, text: textOf(x.item.body), iso: x.item.created_at, sender: null, state, r, extra: null }) },
      });
    }
    const pending = pendingOf(id).filter((o) => !sentNotLogged.has(o.client_msg_id));
    pending.forEach((o, i) => {
      out.push({ at: Number.MAX_SAFE_INTEGER - pending.length + i, iso: o.created_at, item: { key: `${id}:p${o.client_msg_id}`, sig: "", make: () => bubble({ seq: null, cmid: o.client_msg_id, mine: true, text: textOf(o.body), iso: o.created_at, sender: null, state: "pending", r: undefined, extra: null }) } });
    });
    out.sort((a, b) => a.at - b.at);

    // Day separators between days.
    const items: Keyed[] = [];
    let day = "";
    for (const row of out) {
      if (row.iso) {
        const k = dayKey(row.iso);
        if (k !== day) {
          day = k;
          const label = dayLabel(row.iso);
          items.push({ key: `${id}:d${k}`, sig: label, make: () => h("li", { class: "day", role: "separator" }, h("span", {}, label)) });
        }
      }
      items.push(row.item);
    }
    const atBottom = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 40;
    reconcile(list, items);
    if (stickToBottom || atBottom) scroller.scrollTop = scroller.scrollHeight;
    stickToBottom = false;
  }

  let stickToBottom = true;

  function drawDetails(): void {
    const id = view.openId ?? conv;
    const s = client.conversation(id);
    scopeName.textContent = chatName(id);
    stat("received", s?.received ?? 0);
    stat("read", s?.read ?? 0);
    stat("unread", s ? unreadOf(s) : 0);
    stat("head", s?.head_seq ?? 0);
    stat("server_received", s?.server_received ?? 0);
    stat("outbox", client.outbox().length);
    stat("delivered", statsOf(id).delivered);
    stat("duplicates", statsOf(id).duplicates);
    stat("pokes", view.pokes);
    stat("gaps", s?.gaps.length ?? 0);
    stat("checkpoint", client.checkpoint ?? "-");
    const gaps = mergeGaps(s?.gaps ?? []);
    reconcile(
      gapList,
      gaps.length === 0
        ? [{ key: "none", sig: "", make: () => h("li", { class: "none" }, "none") }]
        : gaps.map((g) => ({ key: `${g.from}-${g.to}`, sig: g.reason, make: () => h("li", {}, h("code", {}, `${g.from}–${g.to}`), ` ${g.reason}: ${gapLine(g)}`) })),
    );
    const box = client.outbox();
    reconcile(
      outboxList,
      box.length === 0
        ? [{ key: "none", sig: "", make: () => h("li", { class: "none" }, "empty") }]
        : box.map((o) => ({ key: o.client_msg_id, sig: "", make: () => h("li", {}, h("code", {}, chatName(o.conversation_id)), ` “${textOf(o.body)}”`, h("span", { class: "cmid" }, ` ${o.client_msg_id.slice(0, 8)}`)) })),
    );
    logEl.textContent = view.log.slice(0, 40).join("\n");
  }

  function bubble(b: { seq: number | null; cmid: string | null; mine: boolean; text: string; iso: string; sender: string | null; state: ReceiptState | null; r: ReceiptInfo | undefined; extra: string | null }): HTMLLIElement {
    const cls = b.state === "pending" ? "msg pending mine" : `msg message${b.mine ? " mine" : ""}`;
    const meta = h(
      "span",
      { class: "meta" },
      b.extra ? h("span", { class: "read-by" }, b.extra) : null,
      b.state === "pending" ? null : h("time", { datetime: b.iso, title: fullTime(b.iso) }, clock(b.iso)),
      b.state ? tick(b.state, b.r) : null,
    );
    return h(
      "li",
      { class: cls, "data-seq": b.seq ?? false, "data-cmid": b.cmid ?? false, "data-receipt": b.state ?? false },
      h("div", { class: "bubble" }, b.sender ? h("span", { class: "sender", style: `color:${avatarColour(b.sender)}` }, b.sender) : null, h("p", { class: "text" }, b.text), meta),
    );
  }

  // ---------------------------------------------------------------- behaviour

  function open(id: string | null, opts: { focus?: boolean } = {}): void {
    const prev = view.openId;
    if (prev === id) {
      if (id && opts.focus) input.focus();
      return;
    }
    if (prev) client.hide(prev);
    view.openId = id;
    stickToBottom = true;
    unreadFrom = null;
    if (id) {
      const s = client.conversation(id);
      if (s && unreadOf(s) > 0) unreadFrom = s.read;
      client.show(id);
      markSeen();
      void fetchMembers(id);
      primeReceipts(id);
    }
    // Drawn now, not on the next frame: focus can only move to what is displayed.
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    draw();
    if (id && opts.focus) input.focus();
    else if (prev && opts.focus) chatList.querySelector<HTMLButtonElement>(`.chat-row[data-conv="${CSS.escape(prev)}"]`)?.focus();
    // Opened with unread messages: start at the first of them (only the message list scrolls, never the page).
    const divider = list.querySelector<HTMLElement>(".unread-divider");
    if (divider) scroller.scrollTop = Math.max(0, divider.offsetTop - scroller.offsetTop - 8);
  }

  /** The open conversation is on screen: what it shows counts as read. */
  function markSeen(): void {
    const id = view.openId;
    if (!id || document.hidden) return;
    const entries = messages.get(id);
    if (!entries || entries.size === 0) return;
    const newest = Math.max(...entries.keys());
    const s = client.conversation(id);
    if (!s || newest > s.read) void client.markRead(id, newest);
  }

  /** Members of the conversation, for its header and sender names (members only; the SDK has no call for it). */
  async function fetchMembers(id: string, force = false): Promise<void> {
    if (!client.online || !session.signedIn || (!force && membersAsked.has(id))) return;
    if (client.conversation(id)?.membership !== "member") return;
    membersAsked.add(id);
    try {
      const res = await fetch(`${apiBase}/v1/conversations/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${session.token}` } });
      if (!res.ok) throw new Error(String(res.status));
      members.set(id, ((await res.json()) as { members: string[] }).members);
      view.render();
    } catch {
      membersAsked.delete(id);
    }
  }

  /** Asks for the receipt of the user's newest own message once (live sockets then push updates). */
  function primeReceipts(id: string): void {
    if (!client.online || client.authRequired || client.conversation(id)?.membership !== "member") return;
    const own = entriesSorted(id).filter((m) => m.type === "message" && m.sender.user === user);
    const newest = own[own.length - 1];
    if (!newest || receiptsAsked.get(id) === newest.seq) return;
    receiptsAsked.set(id, newest.seq);
    client.receipts(id, newest.seq).catch(() => receiptsAsked.delete(id));
  }

  function note(line: string): void {
    view.log.unshift(`${new Date().toISOString().slice(11, 23)} ${line}`);
    view.render();
  }

  function toast(kind: "bell" | "hand", title: string, text: string): void {
    const t = h("div", { class: "toast" }, icon(kind), h("p", {}, h("strong", {}, title), h("span", {}, text)));
    toasts.append(t);
    setTimeout(() => t.classList.add("leaving"), 5000);
    setTimeout(() => t.remove(), 5400);
  }

  client.on("delivered", (batch) => {
    const entries = entriesOf(batch.conversationId);
    const st = statsOf(batch.conversationId);
    let memberChange = false;
    for (const m of batch.messages) {
      if (entries.has(m.seq)) st.duplicates++;
      entries.set(m.seq, m);
      if (m.type === "member") memberChange = true;
    }
    st.delivered += batch.messages.length;
    if (batch.conversationId === view.openId) {
      markSeen();
      if (memberChange) void fetchMembers(batch.conversationId, true);
    }
    view.render();
  });
  client.on("conversation", () => view.render());
  client.on("outbox", (items) => {
    for (const o of items) outboxSeen.set(o.client_msg_id, o);
    view.render();
  });
  client.on("receipt", () => view.render());
  client.on("status", (st) => {
    note(`status ${st}`);
    if (st !== "online") return;
    if (view.openId) void fetchMembers(view.openId);
    // Ticks in the chat list too: the newest own message of each chat (live sockets update only the open one).
    for (const r of chats()) if (r.id === view.openId || (r.receipt !== null && r.receipt !== "pending")) primeReceipts(r.id);
  });
  client.on("auth_required", (a) => note(`auth required: ${a.error instanceof Error ? a.error.message : String(a.error)}`));
  client.on("poke", (p) => {
    view.pokes++;
    note(`poke ${p.conversation_id} head=${p.head_seq}`);
  });
  client.on("sent", (s) => {
    const item = outboxSeen.get(s.clientMsgId);
    outboxSeen.delete(s.clientMsgId);
    if (item && !loggedCmids(s.conversationId).has(s.clientMsgId)) sentNotLogged.set(s.clientMsgId, { conversationId: s.conversationId, seq: s.seq, item });
    note(`sent ${s.clientMsgId} → #${s.seq}${s.duplicate ? " (duplicate)" : ""} via ${s.via}`);
  });
  client.on("synced", () => {
    if (view.openId) void fetchMembers(view.openId);
  });
  client.on("sendFailed", (f) => {
    outboxSeen.delete(f.item.client_msg_id);
    note(`send failed ${f.item.client_msg_id}: ${f.error.message}`);
  });
  client.on("reset", (r) => note(`epoch reset ${r.conversationId}: ${r.oldEpoch} → ${r.newEpoch}`));
  client.on("retry", (r) => note(`retry in ${r.delayMs} ms (${r.error instanceof Error ? r.error.message : String(r.error)})`));
  client.on("error", (e) => note(`error: ${e instanceof Error ? e.message : String(e)}`));
  client.on("socket", (s) => {
    note(`${s.conversationId ? "live" : "inbox"} socket ${s.open ? "open" : "closed"}`);
    if (s.open && s.conversationId && s.conversationId === view.openId) primeReceipts(s.conversationId);
  });
  for (const o of client.outbox()) outboxSeen.set(o.client_msg_id, o);

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
  document.addEventListener("visibilitychange", markSeen);

  composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = view.openId;
    const text = input.value.trim();
    if (!text || !id) return;
    input.value = "";
    unreadFrom = null;
    stickToBottom = true;
    client.send(id, { text }).catch((e: unknown) => note(`send refused: ${String(e)}`));
  });

  // The chat list: click or Enter opens; arrow keys, Home and End move between chats.
  chatList.addEventListener("click", (ev) => {
    const row = (ev.target as Element).closest<HTMLButtonElement>(".chat-row");
    if (row?.dataset.conv) open(row.dataset.conv, { focus: true });
  });
  chatList.addEventListener("keydown", (ev) => {
    const rows = [...chatList.querySelectorAll<HTMLButtonElement>(".chat-row")];
    const at = rows.indexOf(document.activeElement as HTMLButtonElement);
    if (at < 0) return;
    const moves: Record<string, number> = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: rows.length - 1 };
    const to = moves[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    const target = rows[Math.max(0, Math.min(rows.length - 1, to))];
    for (const r of rows) r.tabIndex = r === target ? 0 : -1;
    target?.focus();
  });
  backBtn.addEventListener("click", () => open(null, { focus: true }));
  chatSection.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && body.clientWidth < 600 && !dialog.el.open) open(null, { focus: true });
  });

  newChatBtn.addEventListener("click", () => dialog.show(peers));
  dialog.onCreate = async (id, who) => {
    await client.createConversation({ id, members: who });
    await client.sync().catch(() => undefined);
    open(id, { focus: true });
  };

  nudgeBtn.addEventListener("click", () => {
    for (const peer of peers) {
      client.sendToDevice({ user: peer, body: { nudge: `from ${user}/${device}` } }).then(
        (r) => note(`nudge → ${peer}: queued ${r.queued}`),
        (e: unknown) => note(`nudge failed: ${String(e)}`),
      );
    }
  });
  expireBtn.addEventListener("click", () => {
    session.signedIn = false;
    note("session ended: the token provider refuses until a new token is fetched");
    // Sockets opened with the old token stay up until they drop: reconnect so the device notices now.
    if (client.online) {
      client.stop();
      void client.start();
    }
    view.render();
  });
  renewBtn.addEventListener("click", async () => {
    renewBtn.disabled = true;
    try {
      session.token = await devToken(user, device);
      session.signedIn = true;
      note("new token");
      client.tokenChanged();
    } catch (e) {
      note(`new token failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      renewBtn.disabled = false;
      view.render();
    }
  });

  // Pushes arriving: the local receiver lists what the Worker sent; a device gets them while it is offline.
  // Each is announced once: the newest sent_at announced is kept across reloads.
  const pushToken = `demo-${user}-${device}`;
  const pushSeenKey = `od-demo:push-seen:${user}:${device}`;
  const pollPushes = async () => {
    if (!pushesUrl) return stat("push", "off");
    let ok = false;
    try {
      const res = await fetch(pushesUrl);
      const pushes = ((await res.json()) as PushSeen[]).filter((p) => p.token === pushToken);
      const shown = Number(localStorage.getItem(pushSeenKey) ?? "0");
      const fresh = pushes.filter((p) => p.sent_at > shown).reverse(); // the receiver lists newest first
      for (const p of fresh) {
        note(`push: conversation ${p.conversation_id} head ${p.head_seq}, ${p.unread} unread`);
        toast("bell", `Push: ${chatName(p.conversation_id)}`, `${p.unread === 1 ? "1 unread message" : `${p.unread} unread messages`} (a wake-up; the messages come by sync)`);
      }
      if (fresh.length > 0) localStorage.setItem(pushSeenKey, String(fresh[fresh.length - 1]!.sent_at));
      stat("push", String(pushes.length));
      ok = true;
    } catch {
      stat("push", "no receiver");
    }
    // No receiver (plain `wrangler dev`): ask again now and then, not every 2 s.
    setTimeout(() => void pollPushes(), ok ? 2000 : 30_000);
  };
  void pollPushes();

  await client.ready();
  open(conv);
  if (navigator.onLine && !view.forcedOffline) {
    // Best effort: register the device and make sure the conversation exists.
    // A webhook push target: `npm start` runs the receiver the Worker posts to (scripts/push-receiver.mjs).
    await client.registerDevice({ provider: "webhook", token: pushToken }).catch((e: unknown) => note(`register: ${String(e)}`));
    await ensureConversation(client, session.token, peers).catch((e: unknown) => note(`create: ${e instanceof Error ? e.message : String(e)}`));
  }
  apply();
  return view;
}

function avatar(name: string, cls = ""): HTMLSpanElement {
  return h("span", { class: `avatar${cls ? ` ${cls}` : ""}`, style: `--avatar:${avatarColour(name)}`, "aria-hidden": "true" }, initials(name));
}

function tick(state: ReceiptState, r: ReceiptInfo | undefined): HTMLSpanElement {
  const label = receiptTitle(state, r, formatReceipt);
  const glyph = state === "pending" ? icon("clock") : state === "sent" ? icon("check") : icon("checks");
  return h("span", { class: "tick", "data-receipt": state, role: "img", "aria-label": label, title: label }, glyph);
}

let dialogs = 0;

/** The "New chat" dialog: a name (the conversation id) and the other members. */
function newChatDialog() {
  const nameInput = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9_\\-]{1,64}", maxlength: "64", placeholder: "weekend-plans", autocomplete: "off" });
  const membersInput = h("input", { name: "members", placeholder: "bob, carol", autocomplete: "off" });
  const error = h("p", { class: "form-error", role: "alert", id: `new-chat-error-${++dialogs}` });
  nameInput.setAttribute("aria-describedby", error.id);
  const createBtn = h("button", { type: "submit", class: "primary" }, "Create");
  const cancelBtn = h("button", { type: "button", value: "cancel" }, "Cancel");
  const form = h(
    "form",
    // Checked here, not by the browser's bubbles: one message, in the dialog's own words.
    { method: "dialog", novalidate: true },
    h("h3", {}, "New chat"),
    h("label", {}, h("span", {}, "Name"), nameInput, h("small", {}, "Letters, digits, - and _ (it is the conversation id).")),
    h("label", {}, h("span", {}, "Members"), membersInput, h("small", {}, "User ids, separated by commas. You are added.")),
    error,
    h("div", { class: "dialog-actions" }, cancelBtn, createBtn),
  );
  const el = h("dialog", { class: "new-chat-dialog", "aria-label": "New chat" }, form);
  const api = {
    el,
    onCreate: null as null | ((id: string, members: string[]) => Promise<void>),
    show(peers: string[]) {
      error.textContent = "";
      nameInput.value = "";
      membersInput.value = peers.join(", ");
      el.showModal();
      nameInput.focus();
    },
  };
  cancelBtn.addEventListener("click", () => el.close());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = nameInput.value.trim();
    const who = membersInput.value.split(/[\s,]+/).filter(Boolean);
    const bad = [id, ...who].find((x) => !ID_RE.test(x));
    nameInput.setAttribute("aria-invalid", String(!ID_RE.test(id)));
    membersInput.setAttribute("aria-invalid", String(who.some((x) => !ID_RE.test(x))));
    if (bad !== undefined) {
      error.textContent = `“${bad}” is not a valid id: use letters, digits, - and _.`;
      (ID_RE.test(id) ? membersInput : nameInput).focus();
      return;
    }
    createBtn.disabled = true;
    try {
      await api.onCreate?.(id, who);
      el.close();
    } catch (e) {
      error.textContent =
        e instanceof HttpError && e.status === 409 ? "That name is taken: pick another." : e instanceof HttpError ? e.message : "Could not create it: go online and try again.";
    } finally {
      createBtn.disabled = false;
    }
  });
  return api;
}

/** What scripts/push-receiver.mjs lists at GET /pushes (the webhook body plus when it arrived). */
interface PushSeen {
  token: string;
  conversation_id: string;
  head_seq: number;
  unread: number;
  /** ms since epoch, set by the Worker when it sent the push. */
  sent_at: number;
}

/** Set once a device on this page has created the conversation or found it there. */
let conversationThere = false;

/**
 * Creates `conv` unless it is known to exist: in this device's state (a reload),
 * made by another device on this page, or listed by the user's sync. The browser
 * logs every 4xx as an error, so the POST is made only when needed; a 409 (a
 * race) still just means "already there".
 */
async function ensureConversation(client: OfflineClient, token: string, peers: string[]): Promise<void> {
  if (conversationThere || client.conversation(conv)) return;
  const res = await fetch(`${apiBase}/v1/sync?limit=500`, { headers: { authorization: `Bearer ${token}` } });
  if (res.ok && ((await res.json()) as SyncResponse).conversations.some((c) => c.id === conv)) {
    conversationThere = true;
    return;
  }
  try {
    await client.createConversation({ id: conv, members: peers });
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 409)) throw e;
  }
  conversationThere = true;
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
        const entries = [...(v.messages.get(conv)?.values() ?? [])];
        const sorted = entries.filter((m) => m.type === "message").sort((a, b) => a.seq - b.seq);
        const logged = new Set(sorted.filter((m) => m.sender.device === v.device && m.sender.user === v.user).map((m) => m.client_msg_id));
        const pending = v.client.outbox().filter((o) => o.conversation_id === conv && !logged.has(o.client_msg_id)).map((o) => textOf(o.body));
        return {
          user: v.user,
          device: v.device,
          status: v.client.status,
          texts: [...sorted.map((m) => textOf(m.body)), ...pending],
          pending,
          seqs: entries.map((m) => m.seq).sort((a, b) => a - b),
          delivered: v.statsOf(conv).delivered,
          duplicates: v.statsOf(conv).duplicates,
          outbox: v.client.outbox().length,
          received: v.client.conversation(conv)?.received ?? 0,
          open: v.openId,
          chats: v.chats().map((c) => ({ id: c.id, unread: c.unread, preview: c.preview, receipt: c.receipt })),
          authRequired: v.client.authRequired,
        };
      }),
  };
  const boot = $<HTMLElement>(document, "#boot");
  boot.textContent = `Conversation “${conv}” · sync pages of ${pageSize} · ${pushesUrl ? `push receiver on port ${receiverPort}` : "no push receiver"}`;
  boot.dataset.state = "ready";
}

main().catch((err: unknown) => {
  const boot = document.querySelector<HTMLElement>("#boot");
  if (boot) {
    boot.textContent = `Failed to start: ${err instanceof Error ? err.message : String(err)}`;
    boot.dataset.state = "failed";
  }
  console.error(err);
});
