/**
 * Local development auth, shared by scripts/token.mjs and scripts/start.mjs:
 * finds AUTH_SECRET (environment first, then ./.dev.vars, the file `wrangler dev`
 * reads) and mints HS256 device tokens the way the Worker expects them
 * (src/worker/auth.ts: `sub` = user, `did` = device, required `exp`).
 */
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { sign } from "hono/jwt";

/** The project root: scripts/lib/../.. (where package.json, wrangler.toml and .dev.vars live). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEV_VARS_PATH = join(ROOT, ".dev.vars");

/** Same pattern as src/protocol/ids.ts (ID_PATTERN). */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const DEFAULT_TTL_SECONDS = 86_400;
/** Upper bound for --ttl: ten years is plenty for a dev token. */
export const MAX_TTL_SECONDS = 10 * 365 * 86_400;

export function isId(value) {
  return typeof value === "string" && ID_PATTERN.test(value);
}

/**
 * Parses a dotenv-style file (`KEY=value`, `KEY="value"`, `KEY='value'`,
 * optional `export `, `#` comments), close enough to the dotenv rules wrangler
 * applies to .dev.vars for the simple values this project keeps there.
 */
export function parseDotEnv(text) {
  const out = {};
  const LINE =
    /^\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?$/gm;
  const src = text.replace(/\r\n?/g, "\n");
  let match;
  while ((match = LINE.exec(src)) !== null) {
    const key = match[1];
    let value = (match[2] ?? "").trim();
    const quote = value[0];
    value = value.replace(/^(['"`])([\s\S]*)\1$/, "$2");
    if (quote === '"') value = value.replace(/\\n/g, "\n").replace(/\\r/g, "\r");
    out[key] = value;
  }
  return out;
}

/**
 * Creates .dev.vars from the committed .dev.vars.example when it is missing, so a
 * fresh clone runs `wrangler dev` with working dev secrets. An existing file is never touched.
 */
export function ensureDevVars() {
  if (!existsSync(DEV_VARS_PATH)) copyFileSync(`${DEV_VARS_PATH}.example`, DEV_VARS_PATH);
}

/** Reads .dev.vars (created from the example first if missing). */
export function readDevVars(path = DEV_VARS_PATH) {
  if (path === DEV_VARS_PATH) ensureDevVars();
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (err && err.code === "ENOENT") return {};
    throw err;
  }
  return parseDotEnv(text);
}

/**
 * AUTH_SECRET from the environment if set (non-empty), else from .dev.vars.
 * @returns {{ secret: string, source: string }}
 */
export function resolveAuthSecret(env = process.env, devVarsPath = DEV_VARS_PATH) {
  if (env.AUTH_SECRET) return { secret: env.AUTH_SECRET, source: "environment (AUTH_SECRET)" };
  const vars = readDevVars(devVarsPath);
  if (vars.AUTH_SECRET) return { secret: vars.AUTH_SECRET, source: relative(process.cwd(), devVarsPath) || devVarsPath };
  throw new Error(`AUTH_SECRET is not set: export AUTH_SECRET or add AUTH_SECRET="..." to ${devVarsPath}`);
}

/** Parses a --ttl value: a positive integer number of seconds. Returns null when invalid. */
export function parseTtl(raw) {
  if (typeof raw !== "string" || !/^\d{1,10}$/.test(raw)) return null;
  const ttl = Number(raw);
  return ttl >= 1 && ttl <= MAX_TTL_SECONDS ? ttl : null;
}

/**
 * Signs an HS256 device token: { sub: user, did: device, iat, exp: iat + ttl }.
 * @param {{ user: string, device: string, secret: string, ttl?: number, now?: number }} opts
 */
export async function mintDevToken({ user, device, secret, ttl = DEFAULT_TTL_SECONDS, now = Date.now() }) {
  if (!isId(user)) throw new Error(`invalid user id ${JSON.stringify(user)}: must match ${ID_PATTERN}`);
  if (!isId(device)) throw new Error(`invalid device id ${JSON.stringify(device)}: must match ${ID_PATTERN}`);
  if (!Number.isInteger(ttl) || ttl < 1) throw new Error(`invalid ttl ${ttl}: must be a positive integer`);
  if (!secret) throw new Error("empty AUTH_SECRET");
  const iat = Math.floor(now / 1000);
  return sign({ sub: user, did: device, iat, exp: iat + ttl }, secret, "HS256");
}
