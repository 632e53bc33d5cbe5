#!/usr/bin/env node
/**
 * The peer: a Socket.IO 4.8 server with connection-state recovery (in-memory,
 * not durable), in its own process like workerd. Prints `listening <port>` when ready.
 *
 * Recovery mode: clients that connect with `auth.role = "member"` join the room
 * "room"; `send` events are broadcast to it (which is what recovery replays to a
 * member that was away).
 * Broadcast mode (P4 fan-out): clients that connect with `auth.room = "<name>"`
 * join that room; a `broadcast` event `{ room, payload }` is emitted to every
 * socket in the room as `message` (one encode, one write per socket), then acked.
 */
import { createServer } from "node:http";
import { Server } from "socket.io";

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  perMessageDeflate: false,
  connectionStateRecovery: { maxDisconnectionDuration: 5 * 60 * 1000, skipMiddlewares: true },
});

io.on("connection", (socket) => {
  const auth = socket.handshake.auth ?? {};
  if (!socket.recovered && auth.role === "member") socket.join("room");
  if (!socket.recovered && typeof auth.room === "string" && auth.room !== "room") socket.join(auth.room);
  socket.on("send", (payload, ack) => {
    io.to("room").emit("message", payload);
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("broadcast", (msg, ack) => {
    if (msg && typeof msg.room === "string") io.to(msg.room).emit("message", msg.payload);
    if (typeof ack === "function") ack({ ok: true });
  });
});

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => { io.close(); process.exit(0); });
