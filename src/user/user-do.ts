/**
 * UserDO: one per user. Devices and push targets, the conversation index behind
 * sync checkpoints, per-device `received` cursors, the per-device queue, inbox
 * sockets, socket tickets and the user's media metadata. Everything here is a
 * projection of ConversationDOs or device-addressed data; the message log
 * itself lives only in the conversations. This file is the shell.
 */
import { IttyRouter } from "itty-router";
import { settings } from "../config/settings";
import { TUNING } from "../config/tuning";
import type { Env } from "../env";
import { MediaOwner } from "../media/owner";
import { metrics } from "../observability/metrics";
import { RowBudget } from "../platform/admission";
import { errorResponse } from "../platform/errors";
import { PlatformObject } from "../platform/object";
import { identityFrom, sendFrame } from "../platform/sockets";
import { fail, ok, type Result } from "../protocol/errors";
import type { MemberView, Tick, TickResult } from "../protocol/internal";
import type { Attachment, CursorsResponse, DeviceInfo, PushTarget, SyncResponse, ToDevicePage } from "../protocol/types";
import { encodeCheckpoint } from "./checkpoint";
import { ConversationIndex, type Applied } from "./conversation-index";
import { Cursors, type CursorInput } from "./cursors";
import { DeviceQueue, type ToDeviceInput } from "./device-queue";
import { Devices } from "./devices";
import { Inbox } from "./inbox";
import { PacedPull } from "./pull";
import { PushDecisions } from "./push";
import { USER_SCHEMA } from "./schema";
import { UserStore } from "./store";
import { TicketStore } from "./tickets";

export interface UserStats {
  conversations: number;
  checkpoint: number;
  pokes: number;
  pushes_enqueued: number;
  pushes_converted: number;
  devices: {
    device_id: string;
    online: boolean;
    push_provider: string | null;
    backlog_entries: number;
    /** Conversations this device is behind in (stalest first, at most 20), with its cursor: the admin API asks them how old the oldest missing entry is. */
    behind: { conversation_id: string; received: number }[];
    queue_entries: number;
    queue_dropped: number;
    last_seen_at: string;
    last_push_at: string | null;
  }[];
}

export class UserDO extends PlatformObject {
  readonly #store: UserStore;
  readonly #index: ConversationIndex;
  readonly #cursors: Cursors;
  readonly #devices: Devices;
  readonly #queue: DeviceQueue;
  readonly #inbox: Inbox;
  readonly #push: PushDecisions;
  readonly #media: MediaOwner;
  readonly #tickets: TicketStore;
  readonly #pull: PacedPull;
  readonly #router = IttyRouter().get("/inbox", (req) => this.#openInbox(req));

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, USER_SCHEMA);
    const s = settings(env);
    const transaction = <T>(fn: () => T): T => ctx.storage.transactionSync(fn);
    this.#store = new UserStore(this.sql);
    this.#index = new ConversationIndex(this.#store, new RowBudget(s.admission.syncRowsPerSecond));
    this.#cursors = new Cursors(env, this.#store, this.#index);
    this.#devices = new Devices(env, this.#store, s.deviceTtlMs, transaction);
    this.#queue = new DeviceQueue(this.#store, transaction);
    this.#inbox = new Inbox(ctx);
    this.#push = new PushDecisions(env, this.#store, this.#inbox, s.push, transaction);
    this.#media = new MediaOwner(env, this.sql, transaction);
    this.#tickets = new TicketStore(this.sql);
    this.#pull = new PacedPull(env, this.#store, this.#index, transaction);
  }

  // ---- devices ----

  async registerDevice(user: string, device: string, push: PushTarget | null): Promise<Result<DeviceInfo>> {
    this.ready();
    await this.#touch(device);
    this.#store.setPushTarget(device, push?.provider ?? null, push?.token ?? null, push ? JSON.stringify(push) : null);
    return ok({ user_id: user, device_id: device, push });
  }

  async deleteDevice(device: string): Promise<Result<null>> {
    this.ready();
    if (!this.#store.device(device)) return fail("not_found", `no device ${device}`);
    this.ctx.storage.transactionSync(() => {
      this.#devices.drop(device);
      // A lost phone's outstanding socket tickets die with it.
      this.#tickets.forgetDevice(device);
    });
    await this.alarms.atOrBefore(Date.now());
    return ok(null);
  }

  /** A provider said this token is dead: forget it (only if it is still the registered one). */
  async removePushTarget(device: string, token: string): Promise<Result<null>> {
    this.ready();
    this.#store.clearPushTarget(device, token);
    return ok(null);
  }

  // ---- the conversation index ----

  /** An exact view of one conversation from its ConversationDO. */
  async applyView(view: MemberView): Promise<Result<null>> {
    this.ready();
    const applied = this.ctx.storage.transactionSync(() => this.#index.applyView(view, true));
    await this.#after(view.user, applied ? [applied] : [], null);
    return ok(null);
  }

  /** A notification tick; `stale` asks the conversation for an exact view instead. */
  async applyTick(user: string, tick: Tick): Promise<TickResult> {
    this.ready();
    const { result, applied } = this.ctx.storage.transactionSync(() => this.#index.applyTick(user, tick));
    await this.#after(user, applied ? [applied] : [], null);
    return result;
  }

  async sync(device: string, since: string | undefined, limit: number): Promise<Result<SyncResponse>> {
    this.ready();
    const admitted = this.#index.admit(since, limit);
    if (!admitted.ok) return admitted;
    // Paced conversations first, so the listing has their current head.
    const user = this.#store.userId();
    if (user !== null) await this.#after(user, await this.#pull.run(user), null);
    const res = ok(this.#index.list(device, admitted.value, limit));
    await this.#touch(device);
    this.#push.caughtUp(device, true);
    metrics.observe(this.env, "device_backlog_entries", this.#store.backlog(device));
    this.#flushMetrics();
    return res;
  }

  /** Conversations this user is a current member of, per the index. */
  async memberConversations(): Promise<string[]> {
    this.ready();
    return this.#store.memberConversations();
  }

  /** Applies cursors already validated and clamped by each ConversationDO. */
  async applyCursors(device: string, inputs: CursorInput[], receivedNamed: string[], readNamed: string[]): Promise<Result<CursorsResponse>> {
    this.ready();
    await this.#touch(device);
    const { response, applied } = this.ctx.storage.transactionSync(() => this.#cursors.apply(device, inputs, receivedNamed, readNamed));
    const user = inputs[0]?.check.view.user ?? "";
    await this.#devices.settle(user, device, inputs.filter((i) => i.check.received !== null).map((i) => i.conversation_id));
    await this.#after(user, applied, device);
    this.#flushMetrics();
    return ok(response);
  }

  /** Operator view of this user (admin API): backlog and push state per device. */
  async stats(): Promise<UserStats> {
    this.ready();
    const meta = this.#store.meta();
    return {
      conversations: this.#store.conversationCount(),
      checkpoint: this.#store.position(),
      pokes: this.#store.pokes(),
      pushes_enqueued: meta.pushes_enqueued,
      pushes_converted: meta.pushes_converted,
      devices: this.#store.devices().map((d) => {
        return {
          device_id: d.device_id,
          online: this.#inbox.isOnline(d.device_id),
          push_provider: d.push_provider,
          backlog_entries: this.#store.backlog(d.device_id),
          behind: this.#store.behind(d.device_id, 20),
          queue_entries: this.#queue.length(d.device_id),
          queue_dropped: d.dropped,
          last_seen_at: new Date(d.last_seen_at).toISOString(),
          last_push_at: d.last_push_at === null ? null : new Date(d.last_push_at).toISOString(),
        };
      }),
    };
  }

  // ---- per-device queue ----

  async enqueueToDevice(input: ToDeviceInput): Promise<Result<{ queued: number; duplicate: boolean }>> {
    this.ready();
    const res = this.#queue.enqueue(input, Date.now());
    if (!res.ok) return res;
    // Wake the addressed devices that are online: they fetch GET /v1/to-device.
    for (const device of res.value.devices) this.#inbox.notifyDevice(device, { type: "to_device", pending: this.#queue.length(device) });
    return ok({ queued: res.value.queued, duplicate: res.value.duplicate });
  }

  async listToDevice(device: string, limit: number): Promise<Result<ToDevicePage>> {
    this.ready();
    await this.#touch(device);
    return ok(this.#queue.page(device, limit, Date.now()));
  }

  async ackToDevice(device: string, upTo: number): Promise<Result<{ remaining: number }>> {
    this.ready();
    await this.#touch(device);
    return ok(this.#queue.ack(device, upTo));
  }

  // ---- socket tickets ----

  async issueTicket(user: string, device: string): Promise<Result<{ ticket: string; expires_in: number }>> {
    this.ready();
    // The MAC key comes from AUTH_SECRET: the Worker checks it before calling consumeTicket (src/user/tickets.ts).
    return ok(await this.#tickets.issue(user, device, Date.now(), this.env.AUTH_SECRET));
  }

  /** The device a ticket was issued to, once; null for a used, expired or unknown ticket. */
  async consumeTicket(ticket: string): Promise<string | null> {
    this.ready();
    return this.#tickets.consume(ticket, Date.now());
  }

  // ---- media (bytes in R2, metadata here) ----

  async reserveMedia(mediaId: string, size: number, mime: string, preview: string | null, quota: number): Promise<Result<null>> {
    this.ready();
    const now = Date.now();
    const res = this.#media.reserve(mediaId, size, mime, preview, quota, now);
    // An upload never referenced is swept after the grace period.
    if (res.ok) await this.alarms.atOrBefore(now + TUNING.mediaOrphanGraceMs);
    return res;
  }

  async commitMedia(mediaId: string, sha256: string): Promise<void> {
    this.ready();
    this.#media.commit(mediaId, sha256);
  }

  async abortMedia(mediaId: string): Promise<void> {
    this.ready();
    this.#media.abort(mediaId);
  }

  async attachMedia(mediaIds: string[], conversation: string): Promise<Result<Attachment[]>> {
    this.ready();
    return this.#media.attach(mediaIds, conversation);
  }

  async mediaInfo(mediaId: string): Promise<{ attachment: Attachment; conversations: string[] } | null> {
    this.ready();
    return this.#media.info(mediaId);
  }

  async releaseMedia(mediaId: string, conversation: string): Promise<Result<null>> {
    this.ready();
    await this.#media.release(mediaId, conversation);
    return ok(null);
  }

  // ---- platform hooks ----

  protected override async onRequest(request: Request): Promise<Response> {
    const res = (await this.#router.fetch(request)) as Response | undefined;
    return res ?? errorResponse("not_found", "no such route");
  }

  async #openInbox(request: Request): Promise<Response> {
    const who = identityFrom(request);
    await this.#touch(who.device);
    this.#push.caughtUp(who.device, false);
    const res = this.#inbox.open(who, encodeCheckpoint(this.#store.position()));
    if (res.status === 101) metrics.count(this.env, "socket_connects_total", 1, { socket: "inbox" });
    this.#flushMetrics();
    return res;
  }

  protected override onMessage(ws: WebSocket): void {
    sendFrame(ws, { type: "error", code: "invalid_request", message: "the inbox socket takes no frames but ping" });
  }

  /** Due pushes, device expiry, forgetting removed devices, media sweeps; then the next wake-up. */
  protected override async onAlarm(): Promise<void> {
    const now = Date.now();
    const user = this.#store.userId();
    const next = Math.min(
      await this.#push.sendDue(now),
      this.#devices.expire(now),
      user === null ? Infinity : await this.#devices.forget(user, now),
      await this.#media.sweep(now),
    );
    if (next !== Infinity) await this.alarms.atOrBefore(Math.max(next, Date.now()));
    this.#flushMetrics();
  }

  // ---- internals ----

  /** Inbox frames and push decisions for what an update changed. */
  async #after(user: string, applied: readonly Applied[], actingDevice: string | null): Promise<void> {
    if (applied.length === 0) return;
    this.#inbox.notify(applied.flatMap((a) => a.frames), actingDevice);
    const now = Date.now();
    let due = Infinity;
    for (const a of applied) due = Math.min(due, this.#push.consider(user, a, now) ?? Infinity);
    if (due !== Infinity) await this.alarms.atOrBefore(due);
  }

  /** Records activity; a new device may be the next to expire, so the sweep is scheduled. */
  async #touch(device: string): Promise<void> {
    const expiresAt = this.#devices.touch(device, Date.now());
    if (expiresAt !== null) await this.alarms.atOrBefore(expiresAt);
  }

  #flushMetrics(): void {
    const pending = metrics.flush(this.env);
    if (pending) this.ctx.waitUntil(pending);
  }
}
