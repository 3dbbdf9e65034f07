// Bun peer: the peers' common JSON chat protocol on Bun's built-in WebSocket server (uWebSockets).
//
// Rooms are Bun pub/sub topics: `join` is `ws.subscribe(room)`, and `send` is one
// `server.publish(room, frame)`, which frames the message once and writes it to every
// subscriber, the sender included; the `ack` is sent after it.
// Bun unsubscribes a closed socket from all its topics and drops topics left empty.
// The port comes from the first argument or PORT (default 9001); it binds 127.0.0.1 only,
// prints `listening on 127.0.0.1:<port>` once it accepts connections, and exits 0 on
// SIGINT/SIGTERM.
// Run it with `node_modules/.bin/bun bun/server.ts` from benches/peers.

import type { ServerWebSocket } from "bun";

const DEFAULT_PORT = 9001;
/** The largest client message accepted; larger ones close the connection. */
const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Seconds without any received data before a connection is closed (Bun pings meanwhile). */
const IDLE_TIMEOUT_SECONDS = 120;
/** Bytes queued for a client that reads slowly before it is disconnected. */
const BACKPRESSURE_LIMIT_BYTES = 1024 * 1024;

/** The reply to any frame the server cannot act on; the connection stays open. */
const INVALID_FRAME = '{"type":"error","code":"invalid"}';

type RequestId = number | string | undefined;

function listenPort(): number {
  const value = process.argv[2] || process.env.PORT || "";
  if (value === "") return DEFAULT_PORT;
  const port = Number(value.trim());
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`peer-bun: ${JSON.stringify(value)} is not a port number`);
    process.exit(2);
  }
  return port;
}

/** A frame's `id`: a number or string is echoed, null or absent is left out, anything else is invalid. */
function requestId(frame: Record<string, unknown>): RequestId | null {
  const id = frame.id;
  if (id === undefined || id === null) return undefined;
  if (typeof id === "number" || typeof id === "string") return id;
  return null;
}

function parseFrame(text: string): Record<string, unknown> | null {
  try {
    const frame: unknown = JSON.parse(text);
    if (typeof frame === "object" && frame !== null && !Array.isArray(frame)) {
      return frame as Record<string, unknown>;
    }
  } catch {
    // Not JSON: answered as invalid below.
  }
  return null;
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: listenPort(),
  fetch(request, server) {
    // Any path upgrades; there is no auth and no per-connection state to attach.
    if (server.upgrade(request)) return undefined;
    return new Response("expected a WebSocket upgrade\n", { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    idleTimeout: IDLE_TIMEOUT_SECONDS,
    maxPayloadLength: MAX_PAYLOAD_BYTES,
    backpressureLimit: BACKPRESSURE_LIMIT_BYTES,
    closeOnBackpressureLimit: true,
    message(ws: ServerWebSocket<undefined>, message: string | Buffer) {
      const frame = typeof message === "string" ? parseFrame(message) : null;
      const id = frame === null ? null : requestId(frame);
      if (frame === null || id === null) {
        ws.send(INVALID_FRAME);
        return;
      }
      const { type, conversation_id, client_id, text } = frame;
      switch (type) {
        case "join":
          if (typeof conversation_id !== "string") break;
          ws.subscribe(conversation_id);
          ws.send(JSON.stringify({ type: "joined", id, conversation_id }));
          return;
        case "send":
          if (
            typeof conversation_id !== "string" ||
            typeof client_id !== "string" ||
            typeof text !== "string"
          ) {
            break;
          }
          server.publish(
            conversation_id,
            JSON.stringify({ type: "message", conversation_id, client_id, text }),
          );
          ws.send(JSON.stringify({ type: "ack", id, status: "delivered", client_id }));
          return;
        case "ping":
          ws.send(JSON.stringify({ type: "pong", id }));
          return;
      }
      ws.send(INVALID_FRAME);
    },
  },
});

async function shutdown(): Promise<void> {
  // Closes every open connection, then lets the process end.
  await server.stop(true);
  process.exit(0);
}
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());

// Printed after the signal handlers are installed, so a signal sent right after it exits cleanly.
console.log(`listening on 127.0.0.1:${server.port}`);
