import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig, type Plugin } from "vitest/config";

/** Loads migrations/*.sql as text, as wrangler's `Text` rule does for the deployed bundle. */
function sqlAsText(): Plugin {
  return {
    name: "sql-as-text",
    transform(code, id) {
      return id.endsWith(".sql") ? { code: `export default ${JSON.stringify(code)};`, map: null } : null;
    },
  };
}

export default defineConfig({
  plugins: [
    sqlAsText(),
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: { AUTH_SECRET: "test-secret", ADMIN_TOKEN: "test-admin", JWKS_URL: "" },
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
  },
});
