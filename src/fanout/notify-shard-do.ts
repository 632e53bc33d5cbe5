/**
 * NotifyShardDO: one node of a large conversation's notification tree
 * (src/fanout/tree.ts). A branch forwards a tick to its children; a leaf pokes
 * the ≤ F members in its slots. Either way the caller learns which members need
 * an exact view instead (stale or failed), so nothing is lost when a poke or a
 * whole subtree fails: the conversation retries those from its own table.
 */
import { TUNING } from "../config/tuning";
import type { Env } from "../env";
import { forEachPaced } from "../platform/concurrency";
import { log } from "../platform/log";
import { PlatformObject } from "../platform/object";
import { call } from "../platform/rpc";
import type { MemberView, Tick } from "../protocol/internal";
import { childrenOf, leavesUnder, nodeName, type TreeNode } from "./tree";

export interface TickOrder {
  conversation_id: string;
  node: TreeNode;
  tick: Tick;
  leaves: number;
  fanout: number;
  /** Member-list versions of the leaves under `node`, from its first leaf. */
  versions: number[];
  /** A paced round: each leaf starts at most this many pokes per second (null: all at once). */
  leafPokesPerSecond: number | null;
}

/** Who must get an exact view: single members, and whole leaves whose call failed. */
export interface FanoutResult {
  retry: string[];
  failedLeaves: [first: number, end: number][];
}

export class NotifyShardDO extends PlatformObject {
  /** A leaf's member list as of `version` (re-read from the conversation when it moved). */
  #members: { version: number; users: string[] } | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, { migrations: [] });
  }

  async tick(order: TickOrder): Promise<FanoutResult> {
    this.ready();
    if (order.node.level > 0) return this.#forward(order);
    const users = await this.#leafMembers(order.conversation_id, order.node.index, order.versions[0] ?? 0);
    const retry: string[] = [];
    await forEachPaced(users, order.leafPokesPerSecond ?? Infinity, TUNING.notifyConcurrency, async (user) => {
      try {
        if ((await call(this.env.USERS, user, "applyTick", user, order.tick)) === "stale") retry.push(user);
      } catch (err) {
        retry.push(user);
        log("tick_poke_failed", { conversation: order.conversation_id, user, error: String(err) });
      }
    });
    return { retry, failedLeaves: [] };
  }

  /** Exact views for members of this leaf, at most `perSecond` started per second (null: at once); returns the users whose UserDO did not confirm. */
  async views(conversationId: string, views: MemberView[], perSecond: number | null = null): Promise<string[]> {
    this.ready();
    const failed: string[] = [];
    await forEachPaced(views, perSecond ?? Infinity, TUNING.notifyConcurrency, async (view) => {
      try {
        const res = await call(this.env.USERS, view.user, "applyView", view);
        if (!res.ok) failed.push(view.user);
      } catch (err) {
        failed.push(view.user);
        log("view_poke_failed", { conversation: conversationId, user: view.user, error: String(err) });
      }
    });
    return failed;
  }

  async #forward(order: TickOrder): Promise<FanoutResult> {
    const out: FanoutResult = { retry: [], failedLeaves: [] };
    const [first] = leavesUnder(order.node, order.leaves, order.fanout);
    await Promise.all(
      childrenOf(order.node, order.leaves, order.fanout).map(async (child) => {
        const [from, end] = leavesUnder(child, order.leaves, order.fanout);
        const versions = order.versions.slice(from - first, end - first);
        try {
          const res = await call(this.env.NOTIFY, nodeName(order.conversation_id, order.fanout, child), "tick", { ...order, node: child, versions });
          out.retry.push(...res.retry);
          out.failedLeaves.push(...res.failedLeaves);
        } catch (err) {
          out.failedLeaves.push([from, end]);
          log("tick_branch_failed", { conversation: order.conversation_id, node: child, error: String(err) });
        }
      }),
    );
    return out;
  }

  async #leafMembers(conversationId: string, leaf: number, version: number): Promise<string[]> {
    if (this.#members === null || this.#members.version < version) {
      // The conversation answers with its current list, which may be newer than `version`: newer is right.
      this.#members = await call(this.env.CONVERSATIONS, conversationId, "leafMembers", leaf);
    }
    return this.#members.users;
  }
}
