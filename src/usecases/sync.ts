/**
 * GET /v1/sync: summaries from the user's own index (one UserDO call), and
 * with `timeline_limit` the newest entries of each listed conversation this
 * device has not received, read from each conversation in parallel by the
 * Worker. One round trip draws the inbox; it moves no cursor.
 */
import { TUNING } from "../config/tuning";
import { forEachLimited } from "../platform/concurrency";
import { ok, type Failure, type Result } from "../protocol/errors";
import type { Json } from "../protocol/internal";
import type { SenderRef, SyncResponse, SyncTimeline } from "../protocol/types";
import type { Ports } from "./ports";

export interface SyncQuery {
  since?: string;
  limit: number;
  timelineLimit: number;
}

export async function syncInbox(ports: Ports, who: SenderRef, q: SyncQuery): Promise<Result<Json<SyncResponse>>> {
  const res = await ports.user(who.user).sync(who.device, q.since, q.limit);
  if (!res.ok) return res;
  const page = res.value;
  if (q.timelineLimit === 0 || page.conversations.length === 0) return ok(JSON.stringify(page));
  const timelines = new Map<string, Json<SyncTimeline>>();
  let shed: Failure | null = null;
  await forEachLimited(page.conversations, TUNING.syncTimelineConcurrency, async (c) => {
    const t = await ports.conversation(c.id).timeline(who, c.received, q.timelineLimit);
    if (t.ok) timelines.set(c.id, t.value);
    // A conversation that is shedding reads makes the whole sync retry later: partial inboxes would look complete.
    else if (t.code === "overloaded") shed ??= t;
  });
  if (shed) return shed;
  const rows = page.conversations.map((c) => {
    const json = JSON.stringify(c);
    const timeline = timelines.get(c.id);
    return timeline === undefined ? json : `${json.slice(0, -1)},"timeline":${timeline}}`;
  });
  return ok(`{"checkpoint":${JSON.stringify(page.checkpoint)},"has_more":${page.has_more},"conversations":[${rows.join(",")}]}`);
}
