/**
 * HTTP to the service with the token policy: ask the provider for a token per
 * request; on 401 ask once for a fresh one and repeat the request; when that
 * fails too, raise AuthRequiredError (and report it once) instead of an
 * HttpError, so callers keep their work instead of treating it as refused.
 */
import type { SocketTicket } from "../protocol/types";
import { AuthRequiredError, HttpError, NetworkError, StoppedError } from "./errors";
import type { TokenProvider } from "./types";

export type Method = "GET" | "POST";

export interface ApiOptions {
  baseUrl: string;
  token: string | TokenProvider;
  fetch: (request: Request) => Promise<Response>;
  /** Called when the auth state flips: with the failure when a token is needed, with null once one works again. */
  onAuthChange: (failure: AuthRequiredError | null) => void;
}

export class ApiTransport {
  readonly #baseUrl: string;
  readonly #fetch: (request: Request) => Promise<Response>;
  readonly #onAuthChange: (failure: AuthRequiredError | null) => void;
  #source: string | TokenProvider;
  /** One refresh shared by the requests that got 401 at the same time. */
  #refreshing: Promise<string> | null = null;
  #authRequired = false;
  /** The server answered the ticket request with 404: it predates tickets (v1.1). */
  #noTickets = false;

  constructor(options: ApiOptions) {
    this.#baseUrl = options.baseUrl;
    this.#fetch = options.fetch;
    this.#onAuthChange = options.onAuthChange;
    this.#source = options.token;
  }

  get authRequired(): boolean {
    return this.#authRequired;
  }

  /** A static token was refused: nothing heals until `tokenChanged()`, so retrying on a timer is pointless. */
  get waitingForToken(): boolean {
    return this.#authRequired && !this.#canRefresh;
  }

  /** Whether asking again may yield another token (a static string cannot change by itself). */
  get #canRefresh(): boolean {
    return typeof this.#source === "function";
  }

  /** The app has a new token (or its provider can produce one again). */
  tokenChanged(token?: string): void {
    if (token !== undefined) this.#source = token;
  }

  /** Sends a JSON request; resolves with the parsed 2xx body. */
  async request<T>(method: Method, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.#authorized(method, path, body, signal);
    try {
      return (await res.json()) as T;
    } catch (err) {
      // A connection that drops mid-body is a network failure, not a server bug.
      if (signal?.aborted) throw new StoppedError();
      throw new NetworkError(`${method} ${path}: body did not arrive`, err);
    }
  }

  /**
   * The query parameter that authenticates a socket upgrade: a one-time ticket
   * (v1.1), so no long-lived token sits in a URL; `access_token` only when the
   * server predates tickets (404), which is remembered for this instance.
   */
  async socketAuth(signal?: AbortSignal): Promise<["ticket" | "access_token", string]> {
    if (!this.#noTickets) {
      try {
        const { ticket } = await this.request<SocketTicket>("POST", "/v1/sockets/ticket", {}, signal);
        return ["ticket", ticket];
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404)) throw err;
        this.#noTickets = true;
      }
    }
    return ["access_token", await this.#token(false)];
  }

  async #authorized(method: Method, path: string, body: unknown, signal: AbortSignal | undefined): Promise<Response> {
    let res = await this.#send(method, path, await this.#token(false), body, signal);
    if (res.status === 401) {
      if (!this.#canRefresh) throw this.#authFailed("the server refused the token", await HttpError.from(res));
      await res.body?.cancel();
      res = await this.#send(method, path, await this.#refresh(), body, signal);
      if (res.status === 401) throw this.#authFailed("the server refused a freshly requested token", await HttpError.from(res));
    }
    if (this.#authRequired) {
      this.#authRequired = false;
      this.#onAuthChange(null);
    }
    if (!res.ok) throw await HttpError.from(res);
    return res;
  }

  async #send(method: Method, path: string, token: string, body: unknown, signal: AbortSignal | undefined): Promise<Response> {
    if (signal?.aborted) throw new StoppedError();
    const headers = new Headers({ authorization: `Bearer ${token}` });
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      headers.set("content-type", "application/json");
      init.body = JSON.stringify(body);
    }
    if (signal) init.signal = signal;
    try {
      return await this.#fetch(new Request(this.#baseUrl + path, init));
    } catch (err) {
      if (signal?.aborted) throw new StoppedError();
      throw new NetworkError(`${method} ${path} failed`, err);
    }
  }

  /** A token from the source; a provider that throws means "no token now". */
  async #token(forceRefresh: boolean): Promise<string> {
    const source = this.#source;
    if (typeof source === "string") return source;
    try {
      return await source({ forceRefresh });
    } catch (err) {
      throw this.#authFailed("the token provider failed", err);
    }
  }

  #refresh(): Promise<string> {
    this.#refreshing ??= this.#token(true).finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  #authFailed(message: string, cause: unknown): AuthRequiredError {
    const failure = new AuthRequiredError(message, cause);
    if (!this.#authRequired) {
      this.#authRequired = true;
      this.#onAuthChange(failure);
    }
    return failure;
  }
}
