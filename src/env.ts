import type { ConversationDO } from "./conversation/conversation-do";
import type { UserDO } from "./user/user-do";

/** Bindings and settings (wrangler.toml `[vars]`, secrets, `.dev.vars` locally). */
export interface Env {
  CONVERSATIONS: DurableObjectNamespace<ConversationDO>;
  USERS: DurableObjectNamespace<UserDO>;
  /** HS256 secret for device tokens. */
  AUTH_SECRET: string;
  /** Optional JWKS endpoint for RS256/ES256 tokens from an identity provider. */
  JWKS_URL?: string;
  /** Bearer token for the admin API. */
  ADMIN_TOKEN?: string;
}
