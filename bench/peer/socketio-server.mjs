#!/usr/bin/env node
/**
 * The peer: a Socket.IO 4.8 server with connection-state recovery (in-memory,
 * not durable), in its own process like workerd. Clients that connect with
 * `auth.role = "member"` join the room; `send` events are broadcast to the
 * room (which is what recovery replays to a member that was away).
 * Prints `listening <port>` when ready.
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
  if (!socket.recovered && socket.handshake.auth?.role === "member") socket.join("room");
  socket.on("send", (payload, ack) => {
    io.to("room").emit("message", payload);
    if (typeof ack === "function") ack({ ok: true });
  });
});

httpServer.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => { io.close(); process.exit(0); });
