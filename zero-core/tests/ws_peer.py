"""An independent WebSocket peer (python3-websockets) for zero-core's WebSocket tests.

Usage: python3 ws_peer.py client PORT   -- drives a zero echo listener, prints "ok ..." lines
       python3 ws_peer.py server PORT   -- an echo server (subprotocol "echo"), prints "ready"
"""

import asyncio
import sys

import websockets

PORT = int(sys.argv[2])
URL = f"ws://127.0.0.1:{PORT}/echo"


async def read_exactly(ws, n):
    """Reads binary messages until n bytes arrived (zero coalesces what it sends in a tick)."""
    got = b""
    while len(got) < n:
        msg = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(msg, bytes), f"a {type(msg)} message"
        got += msg
    return got


async def client():
    async with websockets.connect(URL, subprotocols=["other", "echo"], max_size=None) as ws:
        assert ws.subprotocol == "echo", ws.subprotocol
        sent = b""
        for size in [1, 125, 126, 65535, 65536, 300_000]:
            data = bytes(i % 251 for i in range(size))
            await ws.send(data)
            sent += data
        assert await read_exactly(ws, len(sent)) == sent, "echo differs"
        print("ok echo", flush=True)
        # Fragmented message: one message, three frames.
        await ws.send([b"ab", b"cd", b"ef"])
        assert await read_exactly(ws, 6) == b"abcdef"
        print("ok fragments", flush=True)
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        print("ok ping", flush=True)
    print("ok close", flush=True)
    async with websockets.connect(URL, subprotocols=["echo"]) as ws:
        await ws.send("text is refused")
        try:
            await asyncio.wait_for(ws.recv(), 5)
            raise AssertionError("a text frame was accepted")
        except websockets.ConnectionClosed as e:
            assert e.rcvd is not None and e.rcvd.code == 1003, e
    print("ok text refused with 1003", flush=True)
    try:
        async with websockets.connect(URL, origin="https://evil.example"):
            raise AssertionError("a foreign origin was accepted")
    except websockets.InvalidStatusCode as e:
        assert e.status_code == 403, e
    print("ok origin refused with 403", flush=True)
    async with websockets.connect(URL, origin="https://app.example", subprotocols=["echo"]) as ws:
        await ws.send(b"allowed")
        assert await read_exactly(ws, 7) == b"allowed"
    print("ok allowed origin", flush=True)


async def echo(ws, path=None):
    async for msg in ws:
        await ws.send(msg)


async def server():
    async with websockets.serve(echo, "127.0.0.1", PORT, subprotocols=["echo"]):
        print("ready", flush=True)
        await asyncio.Future()


asyncio.run(client() if sys.argv[1] == "client" else server())
print("done", flush=True)
