/**
 * The reference limit for `npm run bench`: a separate, minimal Worker (no Hono,
 * no project middleware, no auth) with one SQLite Durable Object. Each request is
 * the bare minimum a conversation does for it:
 *
 *   POST /raw/:name/insert           one RPC + one INSERT (acknowledged after it is durable);
 *                                    answers {seq, rows_written} (the SQL cursor's rowsWritten)
 *   GET  /raw/:name/page?after&limit one RPC + one page SELECT by primary-key range
 *   GET  /raw/:name/live?after       a reconnect: the Worker hands the upgrade to the object, which
 *                                    reads pages of 500 after `after` up to the head, accepts a hibernatable
 *                                    socket and sends hello, one messages frame per page and live (what our
 *                                    live catch-up sends)
 *   POST /raw/:name/broadcast        a fan-out: one INSERT, then the body as a message frame to every
 *                                    socket of the object (`{"type":"message","message":{"seq","body"}}`)
 *   POST /raw/:name/fill?count       setup for page benchmarks (one transaction)
 *   GET  /raw/:name/stats            rows in the table
 *   GET  /healthz
 *
 * bench/lib/services.mjs starts it with its own `wrangler dev` (own port, own
 * persist dir) next to the product's, so both pay wrangler dev's proxy the same way.
 */
import { DurableObject } from "cloudflare:workers";

interface Env {
  RAW: DurableObjectNamespace<RawDO>;
}

/** The largest page, as in the product's history pages (LIMITS.maxPageSize). */
const MAX_PAGE = 500;

export class RawDO extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec("CREATE TABLE IF NOT EXISTS raw_entries (seq INTEGER PRIMARY KEY, body TEXT NOT NULL, created_at INTEGER NOT NULL)");
  }

  /** One INSERT, acknowledged after it is durable (like a send); with the rows it wrote (the reference for "rows per send"). */
  insert(body: string): { seq: number; rows_written: number } {
    const cursor = this.#sql.exec<{ seq: number }>("INSERT INTO raw_entries (body, created_at) VALUES (?, ?) RETURNING seq", body, Date.now());
    const seq = cursor.one().seq;
    return { seq, rows_written: cursor.rowsWritten };
  }

  /** One page SELECT by primary-key range (like a history page). */
  page(after: number, limit: number): { seq: number; body: string; created_at: number }[] {
    return this.#sql.exec<{ seq: number; body: string; created_at: number }>("SELECT seq, body, created_at FROM raw_entries WHERE seq > ? ORDER BY seq LIMIT ?", after, limit).toArray();
  }

  /** The fan-out reference: one INSERT, then one frame to each socket held here (all in one object, no shards). */
  broadcast(body: string): { seq: number; sockets: number } {
    const { seq } = this.insert(body);
    const frame = `{"type":"message","message":{"seq":${seq},"body":${body}}}`;
    const sockets = this.ctx.getWebSockets();
    for (const ws of sockets) ws.send(frame);
    return { seq, sockets: sockets.length };
  }

  /** The reconnect reference: pages of 500 up to the head, one hibernatable socket, hello + a frame per page + live. */
  override fetch(req: Request): Response {
    let after = int(new URL(req.url).searchParams.get("after"), Number.MAX_SAFE_INTEGER) ?? 0;
    const pages = [];
    for (;;) {
      const page = this.page(after, MAX_PAGE);
      pages.push(page);
      after = page.at(-1)?.seq ?? after; // after the last page: the head
      if (page.length < MAX_PAGE) break;
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    server.send(JSON.stringify({ type: "hello", head_seq: after }));
    for (const messages of pages) server.send(JSON.stringify({ type: "messages", messages }));
    server.send('{"type":"live"}');
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Fills the table quickly (setup for page benchmarks). */
  fill(count: number, bodyBytes: number): number {
    const body = JSON.stringify({ text: "x".repeat(Math.max(0, bodyBytes - 12)) });
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (let i = 0; i < count; i++) this.#sql.exec("INSERT INTO raw_entries (body, created_at) VALUES (?, ?)", body, now);
    });
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM raw_entries").one().n;
  }

  stats(): { rows: number } {
    return { rows: this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM raw_entries").one().n };
  }
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const json = (value: unknown, status = 200) => new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });
const int = (v: string | null, max: number) => (v !== null && /^\d{1,16}$/.test(v) && Number(v) <= max ? Number(v) : null);

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/healthz") return json({ ok: true });
    const m = /^\/raw\/([^/]+)\/(insert|broadcast|page|live|fill|stats)$/.exec(url.pathname);
    if (!m || !NAME.test(m[1]!)) return json({ error: "not found" }, 404);
    const stub = env.RAW.get(env.RAW.idFromName(m[1]!));
    switch (`${req.method} ${m[2]}`) {
      case "POST insert":
        return json(await stub.insert(await req.text()), 201);
      case "POST broadcast": {
        const body = await req.text();
        try {
          JSON.parse(body);
        } catch {
          return json({ error: "body must be JSON" }, 400);
        }
        return json(await stub.broadcast(body), 201);
      }
      case "GET page": {
        const after = int(url.searchParams.get("after"), Number.MAX_SAFE_INTEGER);
        const limit = int(url.searchParams.get("limit"), MAX_PAGE);
        if (after === null || limit === null) return json({ error: `after and limit (≤ ${MAX_PAGE}) required` }, 400);
        return json({ entries: await stub.page(after, limit) });
      }
      case "GET live":
        if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") return json({ error: "needs a WebSocket upgrade" }, 426);
        return stub.fetch(req);
      case "POST fill": {
        const count = int(url.searchParams.get("count"), 1_000_000);
        if (count === null) return json({ error: "count required" }, 400);
        return json({ total: await stub.fill(count, 200) });
      }
      case "GET stats":
        return json(await stub.stats());
      default:
        return json({ error: "method not allowed" }, 405);
    }
  },
} satisfies ExportedHandler<Env>;
