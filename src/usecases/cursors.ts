/**
 * Moving cursors: `received` per device, `read` per user, both only forward.
 * Each ConversationDO validates and clamps (membership, visible head) and
 * returns the member's exact view; the UserDO then records both. A request
 * naming several conversations is checked everywhere before anything changes.
 * Used by POST /v1/cursors and by live sockets' `ack` frames.
 */
import { ok, type Result } from "../protocol/errors";
import type { CursorsResponse, SenderRef } from "../protocol/types";
import type { CursorInput } from "../user/cursors";
import type { Ports } from "./ports";

export async function moveCursors(
  ports: Ports,
  who: SenderRef,
  received: ReadonlyMap<string, number>,
  read: ReadonlyMap<string, number>,
): Promise<Result<CursorsResponse>> {
  const names = [...new Set([...received.keys(), ...read.keys()])];
  const check = async (apply: boolean): Promise<Result<CursorInput[]>> => {
    const results = await Promise.all(
      names.map((conv) => ports.conversation(conv).cursor(who, received.get(conv) ?? null, read.get(conv) ?? null, apply)),
    );
    const inputs: CursorInput[] = [];
    for (const [i, r] of results.entries()) {
      if (!r.ok) return r;
      inputs.push({ conversation_id: names[i]!, check: r.value });
    }
    return ok(inputs);
  };
  if (names.length > 1) {
    const dry = await check(false);
    if (!dry.ok) return dry;
  }
  const inputs = await check(true);
  if (!inputs.ok) return inputs;
  return ports.user(who.user).applyCursors(who.device, inputs.value, [...received.keys()], [...read.keys()]);
}
