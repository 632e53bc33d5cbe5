/**
 * Setup only: fills conversations with messages through live sockets (`send`
 * frames, pipelined, counting `sent` replies). A socket send is as durable as an
 * HTTP one but costs the shared machine a fraction of a request (no HTTP request,
 * proxy hop or token check), so large setups (P3, P6) take less of the run.
 * Falls back to HTTP sends for a job whose socket is refused.
 */
import { agent, bodyOf, must, openSocket, pool, sleep } from "./client.mjs";

/**
 * @param {object} ctx  needs url, wsUrl
 * @param {{ conv: string, token: string, n: number, tag: string }[]} jobs  n messages into conv, client_msg_id `${tag}${i}`
 * @param {{ sockets?: number, inflight?: number, bodyBytes?: number }} [o]
 */
export async function fillConversations(ctx, jobs, { sockets = 16, inflight = 10, bodyBytes = 200 } = {}) {
  const body = bodyOf(bodyBytes);
  const http = agent(32);
  let viaHttp = 0;
  await pool(jobs.length, sockets, async (j) => {
    const { conv, token, n, tag } = jobs[j];
    let ws;
    try {
      let issued = 0;
      let done = 0;
      let failed = null;
      let finish;
      const all = new Promise((r) => (finish = r));
      const next = () => {
        if (issued >= n) return;
        const i = issued++;
        ws.send(JSON.stringify({ type: "send", client_msg_id: `${tag}${i}`, body }));
      };
      ws = await openSocket(`${ctx.wsUrl}/v1/conversations/${conv}/live?access_token=${token}`, (f) => {
        if (f.type === "sent") {
          if (++done >= n) finish();
          else next();
        } else if (f.type === "error") {
          failed = `${f.code}: ${f.message}`;
          finish();
        }
      });
      ws.once("close", () => { if (done < n) { failed ??= "socket closed"; finish(); } });
      for (let k = 0; k < Math.min(inflight, n); k++) next();
      await all;
      ws.terminate();
      if (failed) throw new Error(failed);
    } catch {
      ws?.terminate();
      // Whatever did not go through the socket goes over HTTP (same client_msg_ids: repeats are deduplicated).
      viaHttp++;
      for (let i = 0; i < n; i++) {
        await must({ base: ctx.url, agent: http, method: "POST", path: `/v1/conversations/${conv}/messages`, token, json: { client_msg_id: `${tag}${i}`, body } }, [200, 201]);
      }
    }
  });
  http.destroy();
  await sleep(100);
  return { viaHttp };
}
