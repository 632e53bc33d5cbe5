/**
 * What a use case needs from the objects: a conversation by id, a user by id.
 * The Worker gets remote ones (RPC with the retry policy); a Durable Object
 * running a use case for one of its own sockets passes itself for its own id.
 */
import type { ConversationDO } from "../conversation/conversation-do";
import type { Env } from "../env";
import { remote, type Remote } from "../platform/rpc";
import type { UserDO } from "../user/user-do";

export interface Ports {
  conversation(id: string): Remote<ConversationDO>;
  user(id: string): Remote<UserDO>;
}

export function remotePorts(env: Env): Ports {
  return {
    conversation: (id) => remote(env.CONVERSATIONS, id),
    user: (id) => remote(env.USERS, id),
  };
}
