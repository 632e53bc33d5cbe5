// `env` from "cloudflare:test" has the Worker's bindings.
type ProjectEnv = import("../src/env").Env;
declare namespace Cloudflare {
  interface Env extends ProjectEnv {}
}
