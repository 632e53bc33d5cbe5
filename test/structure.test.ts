/**
 * The import graph runs one way: routes and sockets → use cases → objects and
 * stores → platform and protocol; the client SDK → protocol only.
 */
import { describe, expect, it } from "vitest";

const sources = import.meta.glob("../src/**/*.ts", { query: "?raw", import: "default", eager: true }) as Record<string, string>;

function importsOf(text: string): string[] {
  return [...text.matchAll(/^\s*(?:import|export)[^"';]*?from\s+"([^"]+)"/gm)].map((m) => m[1]!);
}

/** `path` (relative to src/) resolved from `file`. */
function resolve(file: string, spec: string): string {
  const parts = file.replace("../src/", "").split("/").slice(0, -1);
  for (const p of spec.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

describe("structure", () => {
  it("reads the sources", () => {
    expect(Object.keys(sources).length).toBeGreaterThan(50);
  });

  it("objects, stores, use cases, platform and protocol never import the HTTP layer", () => {
    const below = ["conversation/", "user/", "fanout/", "push/", "platform/", "protocol/", "config/", "observability/", "usecases/"];
    const offenders: string[] = [];
    for (const [file, text] of Object.entries(sources)) {
      const rel = file.replace("../src/", "");
      if (!below.some((d) => rel.startsWith(d))) continue;
      for (const spec of importsOf(text)) if (spec.startsWith(".") && resolve(file, spec).startsWith("worker/")) offenders.push(`${rel} → ${spec}`);
    }
    expect(offenders).toEqual([]);
  });

  it("platform and protocol import nothing above them; the client imports only the protocol", () => {
    const offenders: string[] = [];
    for (const [file, text] of Object.entries(sources)) {
      const rel = file.replace("../src/", "");
      const allowed = rel.startsWith("client/") ? ["client/", "protocol/"] : rel.startsWith("protocol/") ? ["protocol/"] : rel.startsWith("platform/") ? ["platform/", "protocol/", "config/", "env"] : null;
      if (!allowed) continue;
      for (const spec of importsOf(text)) {
        if (!spec.startsWith(".")) continue;
        const target = resolve(file, spec);
        if (!allowed.some((a) => target.startsWith(a))) offenders.push(`${rel} → ${spec}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
