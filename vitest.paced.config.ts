/**
 * Paced tick rounds: 2 members per notification leaf and 4 pokes per second,
 * so a 6-member conversation is paced (test/paced.test.ts).
 */
import { workersConfig } from "./vitest.config.ts";

export default workersConfig({ NOTIFY_FANOUT: "2", NOTIFY_POKES_PER_SECOND: "4" }, ["test/paced.test.ts"]);
