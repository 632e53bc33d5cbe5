import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig, type Plugin, type ViteUserConfig } from "vitest/config";
import { sharedFakeProviders } from "./test/fakes/providers.ts";

/** Loads .sql migrations and the .html pages under src/ as text, as wrangler's `Text` rule does for the deployed bundle. */
function sqlAsText(): Plugin {
  return {
    name: "sql-as-text",
    transform(code, id) {
      return id.endsWith(".sql") || (id.endsWith(".html") && id.includes("/src/")) ? { code: `export default ${JSON.stringify(code)};`, map: null } : null;
    },
  };
}

/**
 * Fake APNs / FCM / Web Push / webhook endpoints on 127.0.0.1 (test/fakes/providers.ts),
 * started once per vitest process; its URLs and freshly generated keys become bindings.
 * The server is unref'd, so it never holds the process open.
 */
const fakeProviders = await sharedFakeProviders();

/**
 * workerd logs the pool's own control socket closing at the end of every test
 * file ("disconnected: WebSocket peer disconnected"), whatever the file does;
 * the pool filters its siblings ("WebSocket was aborted") but not this one.
 */
const stderrWrite = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
  String(chunk).includes("web-socket.c++:821: disconnected: WebSocket peer disconnected") ? true : stderrWrite(chunk, ...rest)) as typeof process.stderr.write;

/**
 * The Workers pool over wrangler.toml with test bindings. `overrides` change
 * settings for a variant (vitest.sharded.config.ts runs the conversation
 * suites again with a tiny shard threshold, so small tests take the sharded paths).
 */
export function workersConfig(overrides: Record<string, string> = {}, include = ["test/**/*.test.ts"], exclude: string[] = []): ViteUserConfig {
  return defineConfig({
    plugins: [
      sqlAsText(),
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            // Everything a developer's .dev.vars might set is pinned, so tests never depend on it.
            AUTH_SECRET: "test-secret",
            ADMIN_TOKEN: "test-admin",
            JWKS_URL: "",
            DEV_MODE: "false",
            ALLOWED_ORIGINS: "",
            // Push timing scaled down so tests see collapse and ceilings within seconds.
            PUSH_AGGREGATE_MS: "300",
            PUSH_DEVICE_MIN_INTERVAL_SECONDS: "2",
            PUSH_COLLAPSE_SECONDS: "60",
            PUSH_RATE_PER_SECOND: "5",
            PUSH_BURST: "5",
            PUSH_MAX_ATTEMPTS: "4",
            METRICS_FLUSH_MS: "0",
            // Low enough that test/operations.test.ts can provoke shedding with one burst.
            ADMISSION_PAGE_ROWS_PER_SECOND: "5000",
            NOTIFY_POKES_PER_SECOND: "2000",
            ...fakeProviders.bindings,
            ...overrides,
          },
        },
      }),
    ],
    // Seeds for the model and hostile tests (MODEL_SEED=…, HOSTILE_SEED=…) reach the pool.
    envPrefix: ["VITE_", "MODEL_", "HOSTILE_"],
    test: {
      include,
      exclude: ["**/node_modules/**", ...exclude],
      testTimeout: 30_000,
      // The objects' JSON event lines (tests spy on them) stay out of the output, dropped before Vitest sees them (see there).
      setupFiles: ["./test/quiet-events.ts"],
    },
  });
}

// test/paced.test.ts needs its own settings (vitest.paced.config.ts).
export default workersConfig({}, undefined, ["test/paced.test.ts"]);
