/**
 * The conversation suites again with a shard threshold of 2 members per
 * notification leaf and 1 live socket per conversation, so every small test
 * goes through the notification tree (NotifyShardDO) and live shards (LiveShardDO).
 */
import { workersConfig } from "./vitest.config.ts";

export default workersConfig({ NOTIFY_FANOUT: "2", LIVE_ROOT_SOCKETS: "1" }, [
  "test/log.test.ts",
  "test/live.test.ts",
  "test/outbox.test.ts",
  "test/sync.test.ts",
  "test/membership.test.ts",
  "test/cursors.test.ts",
  "test/timeline.test.ts",
  "test/receipts.test.ts",
  "test/model.test.ts",
  "test/client-sockets.test.ts",
]);
