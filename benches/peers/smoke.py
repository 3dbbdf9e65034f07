#!/usr/bin/env python3
"""Hand-run smoke test of the peer servers (not part of CI).

For each peer it starts the server on a free 127.0.0.1 port, waits for the `listening on` line,
connects 3 clients, joins them to one room, sends 5 messages from the first client, and checks
that every client (sender included) receives all 5 message frames in order with the exact text,
that the sender gets 5 acks with the right ids (each after its own message), and a few protocol
edge cases; then it sends SIGTERM and checks that the server exits with status 0.
Socket.IO is driven over a raw WebSocket speaking engine.io v4 / socket.io v5 frames, exactly as
the load harness will.

Needs Python 3.10+ and the `websockets` package, for example:
    python3 -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install websockets
    benches/peers/install
    /tmp/peers-venv/bin/python benches/peers/smoke.py            # all three peers
    /tmp/peers-venv/bin/python benches/peers/smoke.py bun        # or some of bun, socketio, tungstenite
Pass --verbose to print every Socket.IO frame sent and received.
"""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import websockets

PEERS_DIRECTORY = Path(__file__).resolve().parent
REPOSITORY_ROOT = PEERS_DIRECTORY.parent.parent
TARGET_DIRECTORY = Path(os.environ.get("CARGO_TARGET_DIR", REPOSITORY_ROOT / "target"))
N_CLIENTS = 3
N_MESSAGES = 5
ROOM = "room-7"
# Quotes, backslashes, control characters, non-ASCII and astral characters, something that looks
# like markup and JSON, and a long text: each must come back byte for byte.
TEXTS = [
    "hello",
    'quote " backslash \\ slash / tab \t newline \n nul \x00 bell \x07',
    "é ü ß 中文 🎉 \u2028 \u2029",
    '</script><b>{"type":"message"}</b>',
    "x" * 20_000,
]
TIMEOUT_SECONDS = 10
VERBOSE = "--verbose" in sys.argv

COMMANDS = {
    "bun": [str(PEERS_DIRECTORY / "node_modules/.bin/bun"), str(PEERS_DIRECTORY / "bun/server.ts"), "0"],
    "socketio": ["node", str(PEERS_DIRECTORY / "socketio/server.js"), "0"],
    "tungstenite": [str(TARGET_DIRECTORY / "release/peer-tungstenite"), "0"],
}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


async def receive(websocket):
    return await asyncio.wait_for(websocket.recv(), TIMEOUT_SECONDS)


async def start_peer(name):
    process = await asyncio.create_subprocess_exec(
        *COMMANDS[name], cwd=PEERS_DIRECTORY, stdout=asyncio.subprocess.PIPE
    )
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    check(line.startswith("listening on 127.0.0.1:"), f"{name}: unexpected first line {line!r}")
    return process, int(line.rsplit(":", 1)[1])


async def stop_peer(name, process):
    process.send_signal(signal.SIGTERM)
    status = await asyncio.wait_for(process.wait(), TIMEOUT_SECONDS)
    check(status == 0, f"{name}: exited with {status} on SIGTERM")


# The common JSON protocol (Bun and tungstenite peers).


async def json_smoke(port):
    url = f"ws://127.0.0.1:{port}/ws"
    clients = [await websockets.connect(url, max_size=None) for _ in range(N_CLIENTS)]
    try:
        for index, client in enumerate(clients):
            request_id = index + 1 if index % 2 == 0 else f"join-{index}"
            await client.send(json.dumps({"type": "join", "id": request_id, "conversation_id": ROOM}))
            reply = json.loads(await receive(client))
            check(reply == {"type": "joined", "id": request_id, "conversation_id": ROOM}, f"join reply {reply}")

        sender = clients[0]
        send_ids = [5, "five-and-a-bit", 7, 8.5, 9]
        for request_id, text in zip(send_ids, TEXTS):
            frame = {"type": "send", "id": request_id, "conversation_id": ROOM, "client_id": f"c-{request_id}", "text": text}
            await sender.send(json.dumps(frame))

        expected_messages = [
            {"type": "message", "conversation_id": ROOM, "client_id": f"c-{request_id}", "text": text}
            for request_id, text in zip(send_ids, TEXTS)
        ]
        # The sender sees messages and acks interleaved; each ack must follow its own message.
        sender_frames = [json.loads(await receive(sender)) for _ in range(2 * N_MESSAGES)]
        sender_messages = [frame for frame in sender_frames if frame["type"] == "message"]
        acks = [frame for frame in sender_frames if frame["type"] == "ack"]
        check(sender_messages == expected_messages, "the sender's message frames differ")
        check(
            acks == [{"type": "ack", "id": i, "status": "delivered", "client_id": f"c-{i}"} for i in send_ids],
            f"acks {acks}",
        )
        for index, request_id in enumerate(send_ids):
            message_position = sender_frames.index(expected_messages[index])
            ack_position = next(p for p, f in enumerate(sender_frames) if f["type"] == "ack" and f["id"] == request_id)
            check(message_position < ack_position, f"ack {request_id} arrived before its message")
        for client in clients[1:]:
            received = [json.loads(await receive(client)) for _ in range(N_MESSAGES)]
            check(received == expected_messages, "a member's message frames differ")

        # Ping, an invalid frame (the connection stays open), and a send to a room nobody joined.
        await sender.send('{"type":"ping","id":3}')
        check(json.loads(await receive(sender)) == {"type": "pong", "id": 3}, "pong")
        for invalid in ["not json", '{"type":"send","conversation_id":"r"}', b"binary"]:
            await sender.send(invalid)
            check(json.loads(await receive(sender)) == {"type": "error", "code": "invalid"}, f"error for {invalid!r}")
        await clients[1].send('{"type":"send","id":1,"conversation_id":"empty","client_id":"c","text":"t"}')
        check(
            json.loads(await receive(clients[1])) == {"type": "ack", "id": 1, "status": "delivered", "client_id": "c"},
            "ack for an empty room",
        )
        # After a member leaves, the others still get broadcasts and nobody gets extra frames.
        await clients[2].close()
        await sender.send(json.dumps({"type": "send", "id": 10, "conversation_id": ROOM, "client_id": "c", "text": "last"}))
        last = {"type": "message", "conversation_id": ROOM, "client_id": "c", "text": "last"}
        check(json.loads(await receive(sender)) == last, "last message to the sender")
        check(json.loads(await receive(sender))["type"] == "ack", "last ack")
        check(json.loads(await receive(clients[1])) == last, "last message to a member")
    finally:
        for client in clients:
            await client.close()


# Socket.IO over a raw WebSocket: engine.io v4 packets carrying socket.io v5 packets.


class SocketIoClient:
    def __init__(self, websocket, name):
        self.websocket = websocket
        self.name = name

    async def send(self, frame):
        if VERBOSE:
            print(f"    {self.name} -> {frame[:160]!r}")
        await self.websocket.send(frame)

    async def receive(self):
        """The next frame other than an engine.io ping, which is answered with a pong."""
        while True:
            frame = await receive(self.websocket)
            if VERBOSE:
                print(f"    {self.name} <- {frame[:160]!r}")
            if frame == "2":
                await self.send("3")
                continue
            return frame


def parse_ack(frame):
    """`43<id>[args…]` → (id, args)."""
    check(frame.startswith("43"), f"expected an ack, got {frame[:80]!r}")
    bracket = frame.index("[")
    return int(frame[2:bracket]), json.loads(frame[bracket:])


async def socketio_smoke(port):
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    clients = []
    try:
        for index in range(N_CLIENTS):
            client = SocketIoClient(await websockets.connect(url, max_size=None), f"client{index}")
            clients.append(client)
            handshake = await client.receive()
            check(handshake.startswith("0{"), f"open packet {handshake!r}")
            open_packet = json.loads(handshake[1:])
            check(open_packet["upgrades"] == [] and "pingInterval" in open_packet, f"open packet {open_packet}")
            await client.send("40")
            connected = await client.receive()
            check(connected.startswith("40{") and "sid" in json.loads(connected[2:]), f"connect reply {connected!r}")
            await client.send(f'42{index}["join",{json.dumps(ROOM)}]')
            check(parse_ack(await client.receive()) == (index, []), "join ack")

        sender = clients[0]
        for number, text in enumerate(TEXTS):
            payload = {"conversation_id": ROOM, "client_id": f"c-{number}", "text": text}
            await sender.send(f'42{100 + number}{json.dumps(["send", payload])}')

        expected_messages = [
            ["message", {"conversation_id": ROOM, "client_id": f"c-{number}", "text": text}]
            for number, text in enumerate(TEXTS)
        ]
        sender_frames = [await sender.receive() for _ in range(2 * N_MESSAGES)]
        sender_messages = [json.loads(frame[2:]) for frame in sender_frames if frame.startswith("42")]
        acks = [parse_ack(frame) for frame in sender_frames if frame.startswith("43")]
        check(sender_messages == expected_messages, "the sender's message frames differ")
        check(
            acks == [(100 + n, [{"status": "delivered", "client_id": f"c-{n}"}]) for n in range(N_MESSAGES)],
            f"acks {acks}",
        )
        for number in range(N_MESSAGES):
            message_position = next(
                p for p, f in enumerate(sender_frames) if f.startswith("42") and json.loads(f[2:]) == expected_messages[number]
            )
            ack_position = sender_frames.index(next(f for f in sender_frames if f.startswith(f"43{100 + number}[")))
            check(message_position < ack_position, f"ack {100 + number} arrived before its message")
        for client in clients[1:]:
            received = [await client.receive() for _ in range(N_MESSAGES)]
            check(all(frame.startswith("42[") for frame in received), "members get plain events")
            check([json.loads(frame[2:]) for frame in received] == expected_messages, "a member's frames differ")

        # A payload of the wrong shape is answered through the ack, and the socket stays usable.
        await sender.send('4277["send",{"conversation_id":"r"}]')
        check(parse_ack(await sender.receive()) == (77, [{"status": "error", "code": "invalid"}]), "invalid ack")
        await sender.send('4278["join",7]')
        check(parse_ack(await sender.receive()) == (78, [{"status": "error", "code": "invalid"}]), "invalid join ack")
    finally:
        for client in clients:
            await client.websocket.close()


async def run(name):
    process, port = await start_peer(name)
    try:
        await (socketio_smoke(port) if name == "socketio" else json_smoke(port))
    except BaseException:
        process.kill()
        await process.wait()
        raise
    await stop_peer(name, process)


async def main():
    names = [argument for argument in sys.argv[1:] if not argument.startswith("--")] or list(COMMANDS)
    n_failed = 0
    for name in names:
        try:
            await run(name)
            print(f"ok: {name}")
        except Exception as error:  # noqa: BLE001 - report every peer, then fail
            n_failed += 1
            print(f"FAILED: {name}: {type(error).__name__}: {error}")
    print(f"{len(names) - n_failed} passed, {n_failed} failed")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
