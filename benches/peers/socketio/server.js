// Socket.IO peer: the peers' chat job on Node and socket.io v4, over the WebSocket transport only.
//
// Socket.IO has its own protocol, so the job maps onto events with acknowledgements:
// - `join` with a room name: `socket.join(room)`, then an empty ack;
// - `send` with `{conversation_id, client_id, text}`: `io.to(conversation_id).emit("message", …)`
//   to every socket in the room, the sender included, then the ack `{status, client_id}`.
// A room broadcast is Socket.IO's fast path: the adapter encodes the packet and even the
// WebSocket frame once and writes the same buffer to every socket in the room.
// Socket.IO leaves all rooms on disconnect and deletes rooms left empty.
// See README.md beside this folder for the exact engine.io/socket.io frames on the wire.
// The port comes from the first argument or PORT (default 9003); it binds 127.0.0.1 only,
// prints `listening on 127.0.0.1:<port>` once it accepts connections, and exits 0 on
// SIGINT/SIGTERM.
// Run it with `node socketio/server.js` from benches/peers.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const DEFAULT_PORT = 9003;
/** The largest client message accepted; larger ones close the connection. */
const MAX_PAYLOAD_BYTES = 64 * 1024;
/** How long shutdown waits for connections to close before exiting anyway. */
const SHUTDOWN_GRACE_MILLISECONDS = 2000;

/** The ack for a `join` or `send` whose payload has the wrong shape. */
const INVALID = Object.freeze({ status: "error", code: "invalid" });

function listenPort() {
  const value = process.argv[2] || process.env.PORT || "";
  if (value === "") return DEFAULT_PORT;
  const port = Number(value.trim());
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`peer-socketio: ${JSON.stringify(value)} is not a port number`);
    process.exit(2);
  }
  return port;
}

const httpServer = http.createServer((request, response) => {
  // Socket.IO answers its own path (/socket.io/); there is nothing else to serve.
  response.writeHead(404).end();
});

const io = new Server(httpServer, {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  maxHttpBufferSize: MAX_PAYLOAD_BYTES,
});

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    if (typeof room !== "string") {
      if (typeof ack === "function") ack(INVALID);
      return;
    }
    socket.join(room);
    if (typeof ack === "function") ack();
  });

  socket.on("send", (payload, ack) => {
    const { conversation_id, client_id, text } = payload ?? {};
    if (
      typeof conversation_id !== "string" ||
      typeof client_id !== "string" ||
      typeof text !== "string"
    ) {
      if (typeof ack === "function") ack(INVALID);
      return;
    }
    io.to(conversation_id).emit("message", { conversation_id, client_id, text });
    if (typeof ack === "function") ack({ status: "delivered", client_id });
  });
});

function shutdown() {
  // Disconnects every socket and closes the HTTP server; exits once it is closed or the grace
  // period is over, whichever is first.
  setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MILLISECONDS).unref();
  io.close(() => process.exit(0));
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);

httpServer.listen(listenPort(), "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
});
