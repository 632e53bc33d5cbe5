/**
 * Member notification: how each member's UserDO learns what changed.
 *
 * - A **tick** per coalescing window carries the conversation-level facts (new
 *   head and floor with their running counts, and own counts of the few users
 *   who sent), the same for every current member. It costs O(members) calls per
 *   window, never per message, and goes through the shard tree (src/fanout/) so
 *   no object makes more than F calls. The window is notifyWindowMs after a quiet
 *   spell and notifyMaxWindowMs while the conversation stays busy: at most one poke
 *   per member per second, plus the first of each busy spell.
 * - An exact **view** goes to one member when something about that member
 *   changed (join, leave, read cursor, retention for former members) or when a
 *   tick could not apply (their UserDO missed the previous one, or the poke
 *   failed). Those members are rows in `notify_targets`, retried with backoff
 *   until their UserDO confirms, so nothing is lost if an object is evicted.
 *
 * A completed tick is recorded (tick number, head, floor); an interrupted one is
 * simply sent again, and UserDOs merge both kinds of update in any order.
 */
import { TUNING } from "../config/tuning";
import type { Env } from "../env";
import { childrenOf, leafCount, leavesUnder, nodeName, topNodes, type TreeNode } from "../fanout/tree";
import type { FanoutResult } from "../fanout/notify-shard-do";
import type { AlarmScheduler } from "../platform/alarms";
import { forEachLimited } from "../platform/concurrency";
import { log } from "../platform/log";
import { backoffMs } from "../platform/retry";
import { call } from "../platform/rpc";
import type { MemberView, Tick } from "../protocol/internal";
import type { Members } from "./members";
import type { ConversationStore, Meta } from "./store";
import type { Views } from "./views";

export interface NotifierDeps {
  env: Env;
  store: ConversationStore;
  members: Members;
  views: Views;
  alarms: AlarmScheduler;
  meta: () => Meta;
  fanout: number;
  /** The tree spreads a tick round at this many member pokes per second (settings.notifyPokesPerSecond). */
  pokesPerSecond: number;
  /** Whether the conversation is paced now (isPaced of its member count). */
  paced: () => boolean;
  transaction: <T>(fn: () => T) => T;
}

/**
 * A conversation whose tick round takes longer than a sync's freshness
 * interval at `pokesPerSecond` is paced: its leaves spread their pokes over the
 * round (the per-window cost stays at the pace however large it grows), and a
 * member's sync asks it for an exact view instead of waiting for the round.
 */
export function isPaced(members: number, pokesPerSecond: number): boolean {
  return (members * 1000) / pokesPerSecond > TUNING.syncPullFreshMs;
}

export class Notifier {
  /** When the last tick was built, and the first change since (null: none seen). */
  #builtAt = 0;
  #pendingSince: number | null = null;

  constructor(private readonly d: NotifierDeps) {}

  /** True when members have not been told about the current head or floor. */
  get dirty(): boolean {
    const m = this.d.meta();
    return m.head_seq > m.tick_head || m.floor_seq > m.tick_floor;
  }

  /**
   * When the next tick may go: the shortest window after a quiet spell; while the
   * conversation is busy (changes came within notifyMaxWindowMs of the last tick's
   * build), notifyMaxWindowMs after that build, so a busy spell costs one round a
   * second (build to build, whatever a round takes) however it starts.
   */
  nextTickAt(now: number): number {
    // Dirty without a change seen since the last build (a floor move, or changes from before a restart): due now.
    if (this.#pendingSince === null) return Math.max(now, this.#builtAt + TUNING.notifyWindowMs);
    const busy = this.#pendingSince - this.#builtAt < TUNING.notifyMaxWindowMs;
    return Math.max(now, busy ? this.#builtAt + TUNING.notifyMaxWindowMs : this.#pendingSince + TUNING.notifyWindowMs);
  }

  /** An append: make sure a tick follows within the window. */
  async scheduleTick(now: number): Promise<void> {
    this.#pendingSince ??= now;
    const at = this.nextTickAt(now);
    if (!this.d.alarms.covers(at)) await this.d.alarms.atOrBefore(at);
  }

  /** When the alarm must fire for notification work, or null when there is none. */
  dueAt(now: number): number | null {
    const next = this.d.store.targetsSummary().next;
    const due = Math.min(next ?? Infinity, this.dirty ? this.nextTickAt(now) : Infinity);
    return due === Infinity ? null : Math.max(due, now);
  }

  /** Age of the oldest change some member's index has not confirmed (the "oldest undelivered" signal). */
  oldestUnconfirmedMs(now: number): number {
    const m = this.d.meta();
    const targets = this.d.store.targetsSummary().oldest;
    const tickFrom = this.dirty ? (this.d.store.firstEntryAfter(m.tick_head)?.created_at ?? now) : null;
    const oldest = Math.min(targets ?? Infinity, tickFrom ?? Infinity);
    return oldest === Infinity ? 0 : Math.max(0, now - oldest);
  }

  /** Exact views for the members due one (joins, leaves, failed or stale pokes). */
  views(): Promise<void> {
    return this.#views(Date.now());
  }

  /** A tick to every current member if the head or floor moved; a paced round takes up to notifyMaxRoundMs. */
  async tick(): Promise<void> {
    if (this.dirty) await this.#tick();
  }

  /** Leaves of the notification tree (≤ 1: the conversation pokes its members itself). */
  get leaves(): number {
    return leafCount(this.d.meta().next_slot, this.d.fanout);
  }

  /** Small enough to notify every member inline. */
  get flat(): boolean {
    return this.leaves <= 1;
  }

  // ---- exact views ----

  async #views(now: number): Promise<void> {
    const F = this.d.fanout;
    // Up to ten leaves' worth per round: a 1,000-user membership request in one go.
    const due = this.d.store.dueTargets(now, F * 10);
    if (due.length === 0) return;
    const tick = this.d.meta().tick;
    const sharded = this.leaves > 1;
    const direct: MemberView[] = [];
    const byLeaf = new Map<number, MemberView[]>();
    const armed = new Map(due.map((t) => [t.user_id, t]));
    const gone: string[] = [];
    for (const t of due) {
      const view = this.d.views.view(t.user_id, tick);
      if (!view) {
        gone.push(t.user_id);
        continue;
      }
      const slot = this.d.store.member(t.user_id)?.slot ?? null;
      if (sharded && slot !== null) {
        const leaf = Math.floor(slot / F);
        byLeaf.set(leaf, [...(byLeaf.get(leaf) ?? []), view]);
      } else if (direct.length < F) direct.push(view);
    }
    const failed = new Set<string>();
    const sent = [...direct.map((v) => v.user)];
    // A paced conversation's views share its pace (a 1,000-member join wakes 1,000 UserDOs), split over the leaves they go to.
    const viewRate = this.d.paced() && byLeaf.size > 0 ? this.d.pokesPerSecond / byLeaf.size : null;
    await Promise.all([
      forEachLimited(direct, TUNING.notifyConcurrency, async (view) => {
        try {
          const res = await call(this.d.env.USERS, view.user, "applyView", view);
          if (!res.ok) throw new Error(res.message);
        } catch (err) {
          failed.add(view.user);
          log("view_poke_failed", { conversation: view.conversation_id, user: view.user, error: String(err) });
        }
      }),
      ...[...byLeaf].map(async ([leaf, views]) => {
        sent.push(...views.map((v) => v.user));
        try {
          const name = nodeName(this.d.meta().id, F, { level: 0, index: leaf });
          for (const user of await call(this.d.env.NOTIFY, name, "views", this.d.meta().id, views, viewRate)) failed.add(user);
        } catch (err) {
          for (const v of views) failed.add(v.user);
          log("view_leaf_failed", { conversation: this.d.meta().id, leaf, error: String(err) });
        }
      }),
    ]);
    const after = Date.now();
    this.d.transaction(() => {
      for (const user of gone) this.d.store.confirmTarget(user, armed.get(user)!.armed);
      for (const user of sent) {
        const t = armed.get(user)!;
        if (failed.has(user)) {
          this.d.store.retryTarget(user, after + TUNING.notifyRetryBaseMs + backoffMs(t.attempts, TUNING.notifyRetryBaseMs, TUNING.notifyRetryMaxMs));
        } else this.d.store.confirmTarget(user, t.armed);
      }
    });
  }

  // ---- ticks ----

  #build(): Tick {
    const { store, meta } = this.d;
    const m = meta();
    const from = Math.max(m.tick_head, m.floor_seq);
    const senders = store.sendersIn(from, m.head_seq, TUNING.tickMaxSenders);
    // Too many senders for one tick: this one stops before the first sender that does not fit.
    const head = senders.length > TUNING.tickMaxSenders ? senders[TUNING.tickMaxSenders]!.first - 1 : m.head_seq;
    const users = new Set(senders.slice(0, TUNING.tickMaxSenders).map((s) => s.user));
    for (const [user] of m.floor_senders) users.add(user);
    const entry = store.entry(head);
    return {
      conversation_id: m.id,
      epoch: m.epoch,
      tick: m.tick + 1,
      from_tick: m.tick,
      head_seq: head,
      head_messages: head === m.floor_seq ? m.floor_mcount : (entry?.mcount ?? m.msg_count),
      last_activity_at: entry?.created_at ?? null,
      last_sender: entry ? { user: entry.sender_user, device: entry.sender_device } : null,
      floor_seq: m.floor_seq,
      floor_messages: m.floor_mcount,
      senders: [...users].map((u) => [u, store.ownAt(u, head)]),
      floor_senders: m.floor_senders,
      ...(this.d.paced() ? { paced: true as const } : {}),
    };
  }

  async #tick(): Promise<void> {
    const { store, meta, members } = this.d;
    const F = this.d.fanout;
    const tick = this.#build();
    this.#builtAt = Date.now();
    this.#pendingSince = null;
    const leaves = this.leaves;
    const result: FanoutResult = { retry: [], failedLeaves: [] };
    const nodes = topNodes(leaves, F);
    if (nodes.length === 0) {
      await forEachLimited(store.slotMembers(0, F), TUNING.notifyConcurrency, async (user) => {
        try {
          if ((await call(this.d.env.USERS, user, "applyTick", user, tick)) === "stale") result.retry.push(user);
        } catch (err) {
          result.retry.push(user);
          log("tick_poke_failed", { conversation: tick.conversation_id, user, error: String(err) });
        }
      });
    } else {
      const versions = members.leafVersions();
      await Promise.all(nodes.map((node) => this.#send(tick, node, leaves, versions, result)));
    }
    const now = Date.now();
    const m = meta();
    this.d.transaction(() => {
      store.addTargets(result.retry, now);
      for (const [first, end] of result.failedLeaves) store.addTargets(store.slotMembers(first * F, end * F), now);
      m.tick = tick.tick;
      m.tick_head = tick.head_seq;
      m.tick_floor = tick.floor_seq;
      m.floor_senders = [];
      store.saveMeta(m);
    });
  }

  async #send(tick: Tick, node: TreeNode, leaves: number, versions: Map<number, number>, out: FanoutResult): Promise<void> {
    const F = this.d.fanout;
    const [first, end] = leavesUnder(node, leaves, F);
    const members = this.d.meta().member_count;
    const order = {
      conversation_id: tick.conversation_id,
      node,
      tick,
      leaves,
      fanout: F,
      // The round's pace, split over the leaves; never so slow that a round outlasts notifyMaxRoundMs.
      leafPokesPerSecond: tick.paced ? Math.max(this.d.pokesPerSecond, (members * 1000) / TUNING.notifyMaxRoundMs) / leaves : null,
      versions: Array.from({ length: end - first }, (_, i) => versions.get(first + i) ?? 0),
    };
    try {
      const res = await call(this.d.env.NOTIFY, nodeName(tick.conversation_id, F, node), "tick", order);
      out.retry.push(...res.retry);
      out.failedLeaves.push(...res.failedLeaves);
    } catch (err) {
      out.failedLeaves.push([first, end]);
      log("tick_node_failed", { conversation: tick.conversation_id, node, children: childrenOf(node, leaves, F).length, error: String(err) });
    }
  }
}
