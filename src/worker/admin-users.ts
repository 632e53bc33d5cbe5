/**
 * GET /admin/api/users/:id: the user's stats, with each device's oldest
 * undelivered message age under the same definition as the conversations'
 * gauge: the age of the oldest entry the device has not received, asked of the
 * (at most 20) conversations it is furthest behind in.
 */
import type { Env } from "../env";
import { call } from "../platform/rpc";

export async function userStats(env: Env, user: string) {
  const stats = await call(env.USERS, user, "stats");
  const now = Date.now();
  const devices = await Promise.all(
    stats.devices.map(async ({ behind, ...d }) => {
      const times = await Promise.all(behind.map((b) => call(env.CONVERSATIONS, b.conversation_id, "undeliveredSince", b.received)));
      const oldest = Math.min(...times.map((t) => t ?? Infinity));
      return { ...d, oldest_undelivered_seconds: oldest === Infinity ? 0 : Math.max(0, (now - oldest) / 1000) };
    }),
  );
  return { ...stats, devices };
}
