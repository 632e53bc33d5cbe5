/**
 * Sync pulls for paced conversations. A large conversation spreads its tick
 * round over time (src/conversation/notify.ts), so a member's index may lag
 * the head by up to a round; a device that syncs asks those conversations for
 * its exact view first. Bounded: at most TUNING.syncPullMax conversations (most
 * recently active first), each at most once per TUNING.syncPullFreshMs.
 */
import { TUNING } from "../config/tuning";
import type { Env } from "../env";
import { forEachLimited } from "../platform/concurrency";
import { log } from "../platform/log";
import { call } from "../platform/rpc";
import type { Applied, ConversationIndex } from "./conversation-index";
import type { UserStore } from "./store";

export class PacedPull {
  /** When each conversation was last asked (lost on eviction: then the next sync asks again). */
  readonly #askedAt = new Map<string, number>();

  constructor(
    private readonly env: Env,
    private readonly store: UserStore,
    private readonly index: ConversationIndex,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {}

  /** Exact views of the due paced conversations, applied; a conversation that does not answer keeps its tick state. */
  async run(user: string): Promise<Applied[]> {
    const now = Date.now();
    const due = this.store.pacedConversations(TUNING.syncPullMax).filter((id) => (this.#askedAt.get(id) ?? -Infinity) + TUNING.syncPullFreshMs <= now);
    if (this.#askedAt.size > TUNING.syncPullMax * 50) this.#askedAt.clear();
    const applied: Applied[] = [];
    await forEachLimited(due, TUNING.syncPullConcurrency, async (id) => {
      this.#askedAt.set(id, now);
      try {
        const view = await call(this.env.CONVERSATIONS, id, "memberView", user);
        const a = view ? this.transaction(() => this.index.applyView(view)) : null;
        if (a) applied.push(a);
      } catch (err) {
        log("sync_pull_failed", { conversation: id, user, error: String(err) });
      }
    });
    return applied;
  }
}
