/**
 * Words for what the demo shows: member entries as sentences, gaps as quiet
 * lines, receipt states, names and times. Pure functions (no DOM, no SDK
 * state), so what a person reads is decided in one place.
 */
import type { Gap, Message, ReceiptInfo } from "../../src/client";

/** The body of a `member` log entry (PROTOCOL.md: `{added, removed, by}`, `created` on the first). */
interface MemberBody {
  added: string[];
  removed: string[];
  by: string;
  created?: boolean;
}

export function memberBody(body: unknown): MemberBody | null {
  if (typeof body !== "object" || body === null) return null;
  const b = body as Partial<Record<keyof MemberBody, unknown>>;
  const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
  if (typeof b.by !== "string") return null;
  return { added: list(b.added), removed: list(b.removed), by: b.by, created: b.created === true };
}

/** The text of a message body: `{text}` as sent by the demo, anything else as compact JSON. */
export function textOf(body: unknown): string {
  if (typeof body === "object" && body !== null && typeof (body as { text?: unknown }).text === "string") return (body as { text: string }).text;
  return JSON.stringify(body);
}

/** "you …" starts a sentence as "You …"; user ids keep their case (they are identifiers). */
const capitalise = (s: string) => (s.startsWith("you ") ? `Y${s.slice(1)}` : s);

/** "bob", "bob and carol", "bob, carol and dave"; the viewer is "you", named first. */
export function names(users: readonly string[], me: string): string {
  const list = [...new Set(users)].sort((a, b) => (a === me ? -1 : b === me ? 1 : 0)).map((u) => (u === me ? "you" : u));
  if (list.length <= 1) return list[0] ?? "";
  return `${list.slice(0, -1).join(", ")} and ${list[list.length - 1]}`;
}

/**
 * A member entry as a sentence, seen by `me`: "alice added bob", "You removed
 * carol", "bob left", "alice created the conversation with you and carol".
 */
export function memberSentence(body: unknown, me: string): string {
  const b = memberBody(body);
  if (!b) return "The members changed";
  const who = b.by === me ? "you" : b.by;
  if (b.created) {
    const others = b.added.filter((u) => u !== b.by);
    return capitalise(others.length > 0 ? `${who} created the conversation with ${names(others, me)}` : `${who} created the conversation`);
  }
  const parts: string[] = [];
  const joined = b.added.length === 1 && b.added[0] === b.by;
  const left = b.removed.length === 1 && b.removed[0] === b.by;
  if (joined) parts.push("joined");
  else if (b.added.length > 0) parts.push(`added ${names(b.added, me)}`);
  if (left) parts.push("left");
  else if (b.removed.length > 0) parts.push(`removed ${names(b.removed, me)}`);
  if (parts.length === 0) return capitalise(`${who} changed nothing`);
  return capitalise(`${who} ${parts.join(" and ")}`);
}

/** A gap as one quiet line: "3 older messages were removed by retention", "You were not a member for 5 messages". */
export function gapLine(gap: Pick<Gap, "from" | "to" | "reason">): string {
  const n = gap.to - gap.from + 1;
  const messages = n === 1 ? "1 message" : `${n} messages`;
  if (gap.reason === "retention") return n === 1 ? "1 older message was removed by retention" : `${n} older messages were removed by retention`;
  return `You were not a member for ${messages}`;
}

/**
 * Gaps as the reader should see them: overlapping or touching ranges of the
 * same reason as one (retention that moved on reports a longer range later).
 */
export function mergeGaps<G extends Pick<Gap, "from" | "to" | "reason">>(gaps: readonly G[]): Pick<Gap, "from" | "to" | "reason">[] {
  const out: Pick<Gap, "from" | "to" | "reason">[] = [];
  for (const g of [...gaps].sort((a, b) => a.from - b.from || a.to - b.to)) {
    const last = out[out.length - 1];
    if (last && last.reason === g.reason && g.from <= last.to + 1) last.to = Math.max(last.to, g.to);
    else out.push({ from: g.from, to: g.to, reason: g.reason });
  }
  return out;
}

/** What the ticks on one of the user's own messages show. */
export type ReceiptState = "pending" | "sent" | "delivered" | "read";

/**
 * ✓ sent (the server has it), ✓✓ delivered (a device of at least one other
 * member has it), blue ✓✓ read (every other member read it). Alone in a
 * conversation, a message stays "sent".
 */
export function receiptState(r: ReceiptInfo | undefined): Exclude<ReceiptState, "pending"> {
  if (!r || r.members === 0) return "sent";
  if (r.read.users >= r.members) return "read";
  if (r.delivered.users > 0 || r.read.users > 0) return "delivered";
  return "sent";
}

/** The small text under a group message read by some: "read by 2 of 4"; null when the ticks say it all. */
export function partialRead(r: ReceiptInfo | undefined): string | null {
  if (!r || r.members < 2 || r.read.users === 0 || r.read.users >= r.members) return null;
  return `read by ${r.read.users} of ${r.members}`;
}

export function receiptTitle(state: ReceiptState, r: ReceiptInfo | undefined, format: (r: ReceiptInfo) => string): string {
  if (state === "pending") return "Waiting to send: kept on this device until the server has it";
  if (!r) return "Sent: the server has it";
  if (r.members === 0) return "Sent: nobody else is in this conversation";
  if (state === "read") return r.members === 1 ? "Read" : `Read by all ${r.members}`;
  const line = format(r);
  return state === "sent" ? `Sent: ${line}` : line.charAt(0).toUpperCase() + line.slice(1);
}

// ---- times ----

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const dateYearFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

const dayStart = (d: Date) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
const daysAgo = (d: Date, now: Date) => Math.round((dayStart(now) - dayStart(d)) / 86_400_000);

/** "14:03" (in the reader's locale). */
export const clock = (iso: string) => timeFmt.format(new Date(iso));

/** Hover text: the full date and time. */
export const fullTime = (iso: string) => fullFmt.format(new Date(iso));

/** The chat list's time: today "14:03", "Yesterday", this week "Tue", else "27 Nov". */
export function listTime(iso: string, now = new Date()): string {
  const d = new Date(iso);
  const ago = daysAgo(d, now);
  if (ago <= 0) return timeFmt.format(d);
  if (ago === 1) return "Yesterday";
  if (ago < 7) return weekdayFmt.format(d);
  return (d.getFullYear() === now.getFullYear() ? dateFmt : dateYearFmt).format(d);
}

/** A day separator: "Today", "Yesterday", "Monday 27 November". */
export function dayLabel(iso: string, now = new Date()): string {
  const d = new Date(iso);
  const ago = daysAgo(d, now);
  if (ago <= 0) return "Today";
  if (ago === 1) return "Yesterday";
  return d.getFullYear() === now.getFullYear() ? dayFmt.format(d) : dateYearFmt.format(d);
}

export const dayKey = (iso: string) => {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
};

// ---- people ----

/** Current members from the member entries the app holds (a fallback before the summary arrives). */
export function membersFromLog(entries: Iterable<Message>): string[] {
  const members = new Set<string>();
  for (const m of [...entries].filter((e) => e.type === "member").sort((a, b) => a.seq - b.seq)) {
    const b = memberBody(m.body);
    if (!b) continue;
    for (const u of b.added) members.add(u);
    for (const u of b.removed) members.delete(u);
  }
  return [...members];
}

/** Avatar colours: each keeps white text above 4.5:1. */
const AVATAR_COLOURS = ["#2f5fc4", "#8a3ab9", "#b8336a", "#1b7a4a", "#a4470f", "#0f6e7d", "#5a4fcf", "#7a5c00"];

export function avatarColour(name: string): string {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return AVATAR_COLOURS[h % AVATAR_COLOURS.length]!;
}

export function initials(name: string): string {
  const letters = name.replace(/[^A-Za-z0-9]+/g, " ").trim().split(" ").filter(Boolean);
  if (letters.length >= 2) return (letters[0]![0]! + letters[1]![0]!).toUpperCase();
  return (name.replace(/[^A-Za-z0-9]/g, "").slice(0, 2) || "?").toUpperCase();
}

/** A conversation id as a name: "weekend-plans" → "weekend plans". */
export const chatName = (id: string) => id.replace(/[-_]+/g, " ").trim() || id;
