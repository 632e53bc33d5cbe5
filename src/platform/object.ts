/**
 * The base of every Durable Object here, in the spirit of partyserver: it
 * implements `fetch`, the WebSocket handlers, the close handshake and `alarm`
 * once (schema gate, try/catch, logging) and calls hooks that subclasses fill
 * in. Subclasses also call `ready()` at the top of each RPC method.
 */
import { DurableObject } from "cloudflare:workers";
import { settings } from "../config/settings";
import type { Env } from "../env";
import { AlarmScheduler } from "./alarms";
import { errorResponse, internalErrorResponse } from "./errors";
import { log, setLogLevel } from "./log";
import { SchemaGate, type Schema } from "./schema";
import { closeSocket, identityOf, reciprocateClose } from "./sockets";
import { Sql } from "./sql";

export abstract class PlatformObject extends DurableObject<Env> {
  protected readonly sql: Sql;
  protected readonly alarms: AlarmScheduler;
  readonly #gate: SchemaGate;

  constructor(ctx: DurableObjectState, env: Env, schema: Schema) {
    super(ctx, env);
    setLogLevel(settings(env).logLevel);
    this.sql = new Sql(ctx.storage);
    this.alarms = new AlarmScheduler(ctx.storage);
    this.#gate = new SchemaGate(ctx, schema);
    // Answered by the runtime without waking a hibernating object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /** Throws the start-up error, if the schema could not be applied. */
  protected ready(): void {
    this.#gate.check();
  }

  // ---- hooks ----

  /** An HTTP request (socket upgrades arrive here). */
  protected onRequest(_request: Request): Response | Promise<Response> {
    return errorResponse("not_found", "no such route");
  }

  /** A frame from one of this object's sockets. */
  protected onMessage(_ws: WebSocket, _message: string | ArrayBuffer): void | Promise<void> {}

  /** A socket closed (the handshake is already reciprocated). */
  protected onClose(_ws: WebSocket): void | Promise<void> {}

  /** The alarm fired. A throw is logged and makes the platform retry the alarm. */
  protected onAlarm(): void | Promise<void> {}

  // ---- platform entry points, written once ----

  override async fetch(request: Request): Promise<Response> {
    try {
      this.ready();
      return await this.onRequest(request);
    } catch (err) {
      log("object_request_failed", { object: this.constructor.name, url: request.url, error: String(err), stack: stackOf(err) }, "error");
      return internalErrorResponse();
    }
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    try {
      this.ready();
      await this.onMessage(ws, message);
    } catch (err) {
      // The durable log is the truth: dropping the socket makes the client resync from its cursor.
      log("socket_message_failed", { object: this.constructor.name, user: identityOf(ws)?.user, error: String(err), stack: stackOf(err) }, "error");
      closeSocket(ws, 1011, "internal error");
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    reciprocateClose(ws, code, reason);
    try {
      await this.onClose(ws);
    } catch (err) {
      log("socket_close_failed", { object: this.constructor.name, error: String(err) }, "error");
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    log("socket_error", { object: this.constructor.name, user: identityOf(ws)?.user, error: String(error) });
    try {
      await this.onClose(ws);
    } catch (err) {
      log("socket_close_failed", { object: this.constructor.name, error: String(err) }, "error");
    }
  }

  override async alarm(): Promise<void> {
    this.alarms.fired();
    try {
      this.ready();
      await this.onAlarm();
    } catch (err) {
      log("alarm_failed", { object: this.constructor.name, error: String(err), stack: stackOf(err) }, "error");
      throw err;
    }
  }
}

function stackOf(err: unknown): string | undefined {
  return err instanceof Error ? err.stack : undefined;
}
