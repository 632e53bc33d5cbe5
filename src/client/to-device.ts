/** The per-device queue (GET /v1/to-device): each entry to the app once, acked only after the app's writes are durable. */
import type { ToDevicePage } from "../protocol/types";
import type { ApiTransport } from "./api";
import type { ClientStore } from "./store";
import type { ClientOptions } from "./types";

export async function drainToDevice(
  api: ApiTransport,
  store: ClientStore,
  handler: NonNullable<ClientOptions["onToDevice"]>,
  pageSize: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (;;) {
    const page = await api.request<ToDevicePage>("GET", `/v1/to-device?limit=${pageSize}`, undefined, signal);
    const last = page.entries[page.entries.length - 1];
    if (!last) return;
    await store.transact(async (tx) => {
      // Entries at or below the watermark were handed over before an ack got lost.
      const fresh = page.entries.filter((e) => e.id > store.toDeviceDone);
      if (fresh.length > 0) tx.include((await handler(fresh)) ?? []);
      tx.setToDeviceDone(Math.max(store.toDeviceDone, last.id));
    });
    // The server deletes on ack, so it comes after the commit.
    await api.request<{ remaining: number }>("POST", "/v1/to-device/ack", { up_to: last.id }, signal);
    if (!page.has_more) return;
  }
}
