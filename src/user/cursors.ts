/**
 * Cursors as the UserDO records them, after each ConversationDO validated and
 * clamped them: `received` per device (this object is its truth) and the
 * member's view, which carries `read` per user. Both only move forward.
 */
import type { Env } from "../env";
import { metrics } from "../observability/metrics";
import type { CursorCheck } from "../protocol/internal";
import type { CursorsResponse } from "../protocol/types";
import type { Applied, ConversationIndex } from "./conversation-index";
import type { UserStore } from "./store";

export interface CursorInput {
  conversation_id: string;
  check: CursorCheck;
}

export class Cursors {
  constructor(
    private readonly env: Env,
    private readonly store: UserStore,
    private readonly index: ConversationIndex,
  ) {}

  /** Call inside a transaction. Returns the effective cursors and what the views changed. */
  apply(device: string, inputs: readonly CursorInput[], receivedNamed: readonly string[], readNamed: readonly string[]): { response: CursorsResponse; applied: Applied[] } {
    const applied: Applied[] = [];
    for (const { conversation_id: conv, check } of inputs) {
      const a = this.index.applyView(check.view);
      if (a) applied.push(a);
      if (check.received !== null) {
        metrics.count(this.env, "cursor_advanced_entries_total", Math.max(0, check.received - this.store.received(device, conv)));
        this.store.raiseReceived(device, conv, check.received);
      }
    }
    // Object.fromEntries makes own properties, so an id like "__proto__" survives.
    return {
      response: {
        received: Object.fromEntries(receivedNamed.map((conv) => [conv, this.store.received(device, conv)])),
        read: Object.fromEntries(readNamed.map((conv) => [conv, this.store.conversation(conv)?.read_seq ?? 0])),
      },
      applied,
    };
  }
}
