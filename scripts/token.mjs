#!/usr/bin/env node
/**
 * Prints a dev device token (HS256 JWT) for the local server.
 *
 *   npm run -s token -- <user> <device> [--ttl SECONDS]
 *   node scripts/token.mjs alice phone --ttl 3600
 *
 * Claims: sub=<user>, did=<device>, iat=now, exp=now+ttl (default 86400).
 * Signed with AUTH_SECRET from the environment if set, else from ./.dev.vars.
 * Only the token goes to stdout, so `TOKEN=$(node scripts/token.mjs alice phone)` works.
 */
import { DEFAULT_TTL_SECONDS, ID_PATTERN, MAX_TTL_SECONDS, isId, mintDevToken, parseTtl, resolveAuthSecret } from "./lib/dev-auth.mjs";

const USAGE = `usage: npm run -s token -- <user> <device> [--ttl SECONDS]
       node scripts/token.mjs <user> <device> [--ttl SECONDS]

  <user>, <device>  ids matching ${ID_PATTERN}
  --ttl SECONDS     lifetime, 1..${MAX_TTL_SECONDS} (default ${DEFAULT_TTL_SECONDS})

Prints an HS256 JWT (sub=<user>, did=<device>, iat, exp) signed with AUTH_SECRET
from the environment, or from .dev.vars when AUTH_SECRET is not set.`;

function usage(problem) {
  if (problem) console.error(`token: ${problem}\n`);
  console.error(USAGE);
  process.exit(problem ? 2 : 0);
}

function parseArgs(argv) {
  const positional = [];
  let ttl = DEFAULT_TTL_SECONDS;
  let optionsDone = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (optionsDone) positional.push(arg);
    else if (arg === "--") optionsDone = true; // ids may start with "-": `-- -x phone`
    else if (arg === "-h" || arg === "--help") usage();
    else if (arg === "--ttl" || arg.startsWith("--ttl=")) {
      const raw = arg === "--ttl" ? argv[++i] : arg.slice("--ttl=".length);
      const parsed = parseTtl(raw);
      if (parsed === null) usage(`--ttl needs a whole number of seconds between 1 and ${MAX_TTL_SECONDS}, got ${JSON.stringify(raw ?? "")}`);
      ttl = parsed;
    } else if (arg.startsWith("-")) usage(`unknown option ${arg}`);
    else positional.push(arg);
  }
  if (positional.length !== 2) usage(`expected <user> <device>, got ${positional.length} argument(s)`);
  const [user, device] = positional;
  if (!isId(user)) usage(`invalid user id ${JSON.stringify(user)}: must match ${ID_PATTERN}`);
  if (!isId(device)) usage(`invalid device id ${JSON.stringify(device)}: must match ${ID_PATTERN}`);
  return { user, device, ttl };
}

const { user, device, ttl } = parseArgs(process.argv.slice(2));
try {
  const { secret } = resolveAuthSecret();
  console.log(await mintDevToken({ user, device, ttl, secret }));
} catch (err) {
  console.error(`token: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
}
