/**
 * The slice of `node:http` the fake provider server uses. The project compiles
 * against workers-types only (no @types/node); this file lets the one Node-side
 * test helper type-check. Delete it if @types/node is ever added.
 */
declare module "node:http" {
  interface IncomingMessage extends AsyncIterable<Uint8Array> {
    method?: string;
    url?: string;
    headers: Record<string, string | string[] | undefined>;
  }
  interface ServerResponse {
    writeHead(status: number, headers?: Record<string, string>): this;
    end(body?: string | Uint8Array): this;
  }
  interface AddressInfo {
    address: string;
    family: string;
    port: number;
  }
  interface Server {
    listen(port: number, host: string, callback: () => void): this;
    address(): AddressInfo | string | null;
    unref(): this;
    close(callback?: (err?: Error) => void): this;
    once(event: "error", listener: (err: Error) => void): this;
  }
  function createServer(listener: (req: IncomingMessage, res: ServerResponse) => void): Server;
}
