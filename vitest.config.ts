import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig, type Plugin } from "vitest/config";
import { sharedFakeProviders } from "./test/fakes/providers";

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

export default defineConfig({
  plugins: [
    sqlAsText(),
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          AUTH_SECRET: "test-secret",
          ADMIN_TOKEN: "test-admin",
          JWKS_URL: "",
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
          ...fakeProviders.bindings,
        },
      },
    }),
  ],
  // Seeds for the model and hostile tests (MODEL_SEED=…, HOSTILE_SEED=…) reach the pool.
  envPrefix: ["VITE_", "MODEL_", "HOSTILE_"],
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
  },
});
