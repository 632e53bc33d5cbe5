/**
 * The user's conversation index: one row per conversation, a projection of
 * each ConversationDO merged from exact views and ticks (conversation-state.ts),
 * and the sync listing behind opaque checkpoints (checkpoint.ts).
 */
import type { RowBudget } from "../platform/admission";
import { fail, ok, type Result } from "../protocol/errors";
import type { InboxServerFrame } from "../protocol/frames";
import type { MemberView, Tick, TickResult } from "../protocol/internal";
import type { SyncConversation, SyncResponse } from "../protocol/types";
import { decodeCheckpoint, encodeCheckpoint, encodeFullCheckpoint, type Checkpoint } from "./checkpoint";
import { mergeTick, mergeView, unreadOf, type ConversationState } from "./conversation-state";
import { stateOf, type IndexRow, type UserStore } from "./store";

/** What one applied update changed, for inbox frames and push decisions. */
export interface Applied {
  conversation_id: string;
  frames: InboxServerFrame[];
  state: ConversationState;
  unread: number;
  /** The head moved (a new entry the user may see). */
  advanced: boolean;
}

export class ConversationIndex {
  constructor(
    private readonly store: UserStore,
    private readonly budget: RowBudget,
  ) {}

  /** Call inside a transaction. `poked`: the view came as a poke from the conversation (counted). */
  applyView(view: MemberView, poked = false): Applied | null {
    if (poked) this.store.noteUser(view.user);
    const prev = this.store.conversation(view.conversation_id);
    return this.#save(view.conversation_id, prev, mergeView(prev ? stateOf(prev) : null, view), poked);
  }

  /** Call inside a transaction. A tick is always a poke (counted). */
  applyTick(user: string, tick: Tick): { result: TickResult; applied: Applied | null } {
    this.store.noteUser(user);
    const prev = this.store.conversation(tick.conversation_id);
    const next = mergeTick(prev ? stateOf(prev) : null, user, tick);
    if (next === "stale" || next === null) {
      this.store.notePoke();
      return { result: next === "stale" ? "stale" : "ok", applied: null };
    }
    return { result: "ok", applied: this.#save(tick.conversation_id, prev, next, true) };
  }

  /**
   * Checks a sync request before anything runs for it: a malformed or unknown
   * checkpoint is refused and the row budget is charged (a refusal changes nothing).
   * Returns the decoded checkpoint for `list` (null: a full sync from the top).
   */
  admit(since: string | undefined, limit: number): Result<Checkpoint | null> {
    let cp: Checkpoint | null = null;
    if (since !== undefined) {
      cp = decodeCheckpoint(since);
      if (cp === null || (cp.kind === "since" ? cp.pos : cp.snapshot) > this.store.position()) return fail("invalid_request", "unknown or malformed checkpoint");
    }
    // Summaries are cheap (one index row each), so their budget is far larger than history's.
    return this.budget.admit(limit, "sync") ?? ok(cp);
  }

  /**
   * Conversations changed after the checkpoint `from` (or the whole inbox, newest
   * activity first, when null), at most `limit` per page. `from` comes from `admit`: a full
   * sync's snapshot is taken here, so it includes what was applied in between.
   */
  list(device: string, from: Checkpoint | null, limit: number): SyncResponse {
    const position = this.store.position();
    const cp = from ?? { kind: "full" as const, snapshot: position, after: null };
    if (cp.kind === "since") {
      const rows = this.store.changedSince(device, cp.pos, limit + 1);
      const hasMore = rows.length > limit;
      const page = rows.slice(0, limit);
      return { checkpoint: encodeCheckpoint(hasMore ? page[page.length - 1]!.change_pos : position), has_more: hasMore, conversations: page.map(summary) };
    }
    const rows = this.store.byActivity(device, cp.snapshot, cp.after, limit + 1);
    const hasMore = rows.length > limit;
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const checkpoint = hasMore && last ? encodeFullCheckpoint(cp.snapshot, last.last_activity_at ?? 0, last.conversation_id) : encodeCheckpoint(cp.snapshot);
    return { checkpoint, has_more: hasMore, conversations: page.map(summary) };
  }

  #save(id: string, prev: IndexRow | undefined, next: ConversationState, poked: boolean): Applied | null {
    const unread = unreadOf(next);
    const changed =
      !prev ||
      prev.epoch !== next.epoch ||
      prev.head_seq !== next.head.seq ||
      prev.floor_seq !== next.floor.seq ||
      prev.read_seq !== next.read.seq ||
      prev.membership !== next.membership ||
      prev.member_seq !== next.member_seq ||
      prev.unread !== unread;
    // A state that only got newer in tick terms is saved in place: the sync position moves only for what a client sees.
    const pos = changed ? this.store.position() + 1 : prev.change_pos;
    this.store.saveConversation(id, next, unread, pos, poked);
    if (!changed) return null;
    const frames: InboxServerFrame[] = [];
    const advanced = !prev || next.head.seq > prev.head_seq;
    if (advanced) frames.push({ type: "poke", conversation_id: id, head_seq: next.head.seq, checkpoint: encodeCheckpoint(pos) });
    if (prev && next.read.seq > prev.read_seq) frames.push({ type: "read", conversation_id: id, read: next.read.seq });
    if (!prev || next.membership !== prev.membership) frames.push({ type: "membership", conversation_id: id, membership: next.membership });
    return { conversation_id: id, frames, state: next, unread, advanced };
  }
}

function summary(r: IndexRow & { received: number | null }): SyncConversation {
  return {
    id: r.conversation_id,
    epoch: r.epoch,
    head_seq: r.head_seq,
    floor_seq: r.floor_seq,
    received: r.received ?? 0,
    read: r.read_seq,
    unread: r.unread,
    last_activity_at: r.last_activity_at === null ? null : new Date(r.last_activity_at).toISOString(),
    membership: r.membership,
  };
}
