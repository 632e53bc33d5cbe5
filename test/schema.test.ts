/// <reference types="vite/client" />
/**
 * Migrations are append-only: a shipped file never changes (existing objects
 * would never run the edit), versions are contiguous from 1, and each object
 * class applies exactly its folder. A schema change is a new numbered file.
 * A baseline (`schema.sql`, what a new object starts from) builds exactly what
 * the numbered files build.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CONVERSATION_MIGRATIONS, CONVERSATION_SCHEMA } from "../src/conversation/schema";
import { migrate, type Schema } from "../src/platform/schema";
import { USER_MIGRATIONS, USER_SCHEMA } from "../src/user/schema";
import { convStub, Device, flush, pokes, uid, userStub } from "./helpers";

const all = import.meta.glob<string>("../migrations/**/*.sql", { eager: true, import: "default" });
/** The numbered files; each folder's `schema.sql` is its baseline (kept up to date, not append-only). */
const files = Object.fromEntries(Object.entries(all).filter(([p]) => !p.endsWith("/schema.sql")));

/** SHA-256 of every shipped migration. Add a line for a new file; never change one. */
const SHIPPED: Record<string, string> = {
  "conversation/0001_init.sql": "9611cb524c84eae6661ee608a98e45abfa04724dc76ce2aaa49603d9ea618980",
  "conversation/0002_retention.sql": "880b1458a457b537724e2abc1b9ade5aade6cfa707fa3708873b5a9d27032eb7",
  "conversation/0003_media.sql": "d50542ded1729fee14fe854d4596cf33d984d7f4a630ed50921e8e6e6d4c19b6",
  "conversation/0004_idempotency.sql": "1905b31e186c732cc8359b0621132466d1e18288f6a45c4c8e338abe48c3c93b",
  "conversation/0005_constant_cost.sql": "e55a4bf526319b7b6d68401524389a1b699183fa4f0fb8a2b65604fe74af93c7",
  "conversation/0006_entry_keys.sql": "fe56ca89bac955224561a78b8ad926e90d6547ade809844abbfbefb7dee83529",
  "user/0001_init.sql": "0de7f71dcdfc97645dc00334f8cf23dd7baa0b9a7606f0cbc0d11fdcc49b9e85",
  "user/0002_push.sql": "b4d4ff8b82fb5929a7d7b32cd565e9a9a8437e818e75bb7e83dcfbc6f77277fb",
  "user/0003_media.sql": "20027221a4592293a5f995a9acc3223a97bb461dcf15183c2d88f9ae6f4f62ed",
  "user/0004_tickets.sql": "71adf5a60b6742b0c48d4a7e908d3d858071f7eaea6f106dd5e6235751101664",
  "user/0005_derived_index.sql": "203d6f27b58baa374087ce0bba25661e03b4310e8139efc4c70c5deadfcaba50",
  "user/0006_paced.sql": "2e8194471ca45b0af74b9a0c7dda6ae328ff8bf46ad6dab283b7a27f31fd2943",
  "user/0007_poke_rows.sql": "fb0fab3c67a27b5e1ff4439501d8c9fb39222c11582ee5658c13f62dec00b013",
  "metrics/0001_init.sql": "e8d67be640a4554c8a02440abc427f5f26ad29c59d1a9283cc83349c4abe65b7",
  "push_gate/0001_init.sql": "07af23fded862ed476e456a58e593e35ed6218f709430e269972291ffc3e500d",
  "live_shard/0001_init.sql": "c7305392758ecd5e1ed5d89c33f8f5ee8a602703ac4746d4e6d5d48ea16d7176",
};

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

describe("migrations", () => {
  it("shipped files are unchanged (edit nothing: add a new numbered file)", async () => {
    const actual: Record<string, string> = {};
    for (const [path, text] of Object.entries(files)) actual[path.replace("../migrations/", "")] = await sha256(text);
    for (const [path, hash] of Object.entries(SHIPPED)) {
      expect(actual[path], `${path} is missing`).toBeDefined();
      expect(actual[path], `${path} changed after it shipped; put the change in a new migration`).toBe(hash);
    }
    const unlisted = Object.keys(actual).filter((p) => !(p in SHIPPED));
    expect(unlisted, "new migration files: add their hashes to SHIPPED in test/schema.test.ts").toEqual([]);
  });

  it("each folder is numbered 0001.. without holes", () => {
    const byFolder = new Map<string, number[]>();
    for (const path of Object.keys(files)) {
      const [, folder, n] = /migrations\/([^/]+)\/(\d{4})_[a-z0-9_]+\.sql$/.exec(path) ?? [];
      expect(folder, `${path} is not named migrations/<object>/NNNN_name.sql`).toBeDefined();
      byFolder.set(folder!, [...(byFolder.get(folder!) ?? []), Number(n)]);
    }
    for (const [folder, numbers] of byFolder) {
      expect(numbers.sort((a, b) => a - b), folder).toEqual(numbers.map((_, i) => i + 1));
    }
  });

  it("the objects apply every file of their folder, in order", () => {
    for (const [folder, list] of [["conversation", CONVERSATION_MIGRATIONS], ["user", USER_MIGRATIONS]] as const) {
      const inFolder = Object.entries(files).filter(([p]) => p.includes(`/migrations/${folder}/`)).sort(([a], [b]) => a.localeCompare(b));
      expect(list.map((m) => m.version)).toEqual(inFolder.map((_, i) => i + 1));
      expect(list.map((m) => m.sql)).toEqual(inFolder.map(([, text]) => text));
    }
  });

  /** Our objects in sqlite_master: not the runtime's own `_cf_` tables, not SQLite's. */
  const OURS = "name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite_%'";

  /** Tables (columns, WITHOUT ROWID, rows), indexes and their SQL with comments and layout stripped. */
  function layoutOf(sql: SqlStorage): unknown[] {
    const norm = (text: string | null) => (text ?? "").replace(/--[^\n]*/g, "").replace(/\s+/g, " ").replace(/\s*([,()])\s*/g, "$1").trim();
    const objects = sql
      .exec<{ type: string; name: string; sql: string | null }>(`SELECT type, name, sql FROM sqlite_master WHERE ${OURS} AND name != '_schema' ORDER BY type, name`)
      .toArray();
    return objects.map((o) =>
      o.type !== "table"
        ? [o.type, o.name, norm(o.sql)]
        : [
            o.type,
            o.name,
            norm(o.sql),
            sql.exec(`SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_info('${o.name}')`).toArray(),
            sql.exec(`SELECT * FROM "${o.name}"`).toArray(),
          ],
    );
  }

  /** Empties an object's storage of every table of ours (the runtime's own `_cf_` tables stay). */
  function dropTables(sql: SqlStorage): void {
    for (const o of sql.exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND ${OURS}`).toArray()) {
      sql.exec(`DROP TABLE "${o.name}"`);
    }
  }

  it.each([
    ["conversation", CONVERSATION_SCHEMA, (id: string) => convStub(id)],
    ["user", USER_SCHEMA, (id: string) => userStub(id)],
  ] as const)("a new %s object starts from the baseline, which builds what the numbered files build", async (name, schema: Schema, stub) => {
    expect(schema.baseline, `${name} has a baseline`).toBeDefined();
    const last = Math.max(...schema.migrations.map((m) => m.version));
    expect(schema.baseline!.version).toBeLessThanOrEqual(last);
    expect(schema.baseline!.sql).toBe(all[`../migrations/${name}/schema.sql`]);
    await runInDurableObject(stub(uid(`fresh-${name}`)), (_obj, state) => {
      const sql = state.storage.sql;
      // The constructor applied the baseline (one _schema row) and whatever numbered files come after it.
      const versions = sql.exec<{ version: number }>("SELECT version FROM _schema ORDER BY version").toArray().map((r) => r.version);
      expect(versions).toEqual([schema.baseline!.version, ...schema.migrations.filter((m) => m.version > schema.baseline!.version).map((m) => m.version)]);
      const fromBaseline = layoutOf(sql);
      // The same storage emptied and rebuilt from the numbered files alone.
      dropTables(sql);
      expect(migrate(state.storage, { migrations: schema.migrations })).toBe(last);
      expect(sql.exec("SELECT count(*) AS n FROM _schema").one().n).toBe(schema.migrations.length);
      expect(layoutOf(sql)).toEqual(fromBaseline);
    });
  });

  it("an object that has a schema never gets the baseline: it applies the numbered files after its version", async () => {
    await runInDurableObject(userStub(uid("older")), (_obj, state) => {
      const sql = state.storage.sql;
      dropTables(sql);
      // An object made by code that had migrations 1..5 only.
      expect(migrate(state.storage, { migrations: USER_MIGRATIONS.filter((m) => m.version <= 5) })).toBe(5);
      expect(migrate(state.storage, USER_SCHEMA)).toBe(7);
      expect(sql.exec<{ version: number }>("SELECT version FROM _schema ORDER BY version").toArray().map((r) => r.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    });
  });

  it("conversation v6 moves live entries' keys to their own index and keeps removed entries' keys", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const seq = await alice.sendOk(conv, "hi", "k1");
    const v6 = CONVERSATION_MIGRATIONS.find((m) => m.version === 6)!.sql;
    await runInDurableObject(convStub(conv), (_obj, state) => {
      const sql = state.storage.sql;
      // The v5 layout: every entry's key in `idempotency`, none on `entries`; plus the key of an entry retention removed.
      sql.exec("DROP INDEX entries_key");
      sql.exec(`INSERT INTO idempotency (sender_user, sender_device, client_msg_id, seq, msg_id, created_at)
                SELECT sender_user, sender_device, coalesce(client_msg_id, '~member-' || seq), seq, msg_id, created_at FROM entries`);
      sql.exec("INSERT INTO idempotency VALUES (?, 'phone', 'gone', 0, 'removed', ?)", alice.user, Date.now());
      sql.exec(v6);
      const kept = sql.exec<{ client_msg_id: string }>("SELECT client_msg_id FROM idempotency").toArray().map((r) => r.client_msg_id);
      expect(kept).toEqual(["gone"]);
    });
    await abortAllDurableObjects();
    const retry = await alice.send(conv, "hi", "k1");
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({ seq, duplicate: true });
    const removed = await alice.send(conv, "again", "gone");
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ seq: 0, duplicate: true });
    expect(await alice.sendOk(conv, "new", "k2")).toBe(seq + 1);
  });

  it("user v7 keeps every checkpoint and the poke count when both leave user_meta", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await alice.sendOk(conv);
    await flush(conv);
    const first = await bob.sync();
    expect(first.body.conversations.map((c) => c.id)).toEqual([conv]);
    const pokesBefore = await pokes(bob.user);
    const v7 = USER_MIGRATIONS.find((m) => m.version === 7)!.sql;
    await runInDurableObject(userStub(bob.user), (_obj, state) => {
      const sql = state.storage.sql;
      // The v6 layout: the sync position and every poke counted in user_meta, none on the rows.
      const pos = sql.exec<{ p: number }>("SELECT max(change_pos) AS p FROM conversations").one().p;
      sql.exec("ALTER TABLE conversations DROP COLUMN pokes");
      sql.exec("ALTER TABLE user_meta ADD COLUMN change_pos INTEGER NOT NULL DEFAULT 0");
      sql.exec("UPDATE user_meta SET change_pos = ?, pokes = ?", pos, pokesBefore);
      sql.exec(v7);
    });
    await abortAllDurableObjects();
    expect(await pokes(bob.user)).toBe(pokesBefore);
    // The checkpoint issued before is still known, and still means "nothing new".
    const same = await bob.sync(`since=${encodeURIComponent(first.body.checkpoint)}`);
    expect(same.status).toBe(200);
    expect(same.body.conversations).toEqual([]);
    const head = await alice.sendOk(conv);
    await flush(conv);
    const next = await bob.sync(`since=${encodeURIComponent(first.body.checkpoint)}`);
    expect(next.body.conversations.map((c) => [c.id, c.head_seq, c.unread])).toEqual([[conv, head, 2]]);
    expect(await pokes(bob.user)).toBe(pokesBefore + 1);
  });
});
