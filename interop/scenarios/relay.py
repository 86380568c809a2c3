"""A loopback TCP relay between one client and the server, so a scenario can see the
network go away from the server's side.

The client connects to the relay, the relay to the server, and bytes pass through
unchanged (TLS stays end to end). When the client's side closes (for example
`Client.kill()`, a connection dropped without a stream close), the relay half-closes
its connection to the server: the server reads end-of-stream with no TLS close_notify,
i.e. a lost connection. `server_closed()` then waits until the server closes its end
too, which Herald does only once the session loop has ended: an observable effect of
the server having noticed the loss, instead of a fixed sleep or a log line.
"""

from __future__ import annotations

import asyncio

from clients import ScenarioError

CHUNK = 64 * 1024


class Relay:
    """Relays exactly one client connection from a free 127.0.0.1 port to `target`."""

    def __init__(self, host: str, target_port: int) -> None:
        self.host = host
        self.target_port = target_port
        self.port = 0
        self._listener: asyncio.base_events.Server | None = None
        self._server_eof = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> "Relay":
        self._listener = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._listener.sockets[0].getsockname()[1]
        return self

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        # One connection per relay: stop listening once the client is in.
        if self._listener is not None:
            self._listener.close()
        try:
            s_reader, s_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            c_writer.close()
            return
        self._writers += [c_writer, s_writer]
        self._tasks += [
            asyncio.ensure_future(self._pump(c_reader, s_writer, half_close=True)),
            asyncio.ensure_future(self._pump(s_reader, c_writer, half_close=False, eof=self._server_eof)),
        ]

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                    half_close: bool, eof: asyncio.Event | None = None) -> None:
        """Copy until end-of-stream (or a reset) on `reader`; then half-close `writer`
        (client to server) or just record the end (server to client)."""
        try:
            while True:
                try:
                    data = await reader.read(CHUNK)
                except (ConnectionError, OSError):
                    data = b""
                if not data:
                    break
                try:
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, OSError):
                    # The other side is gone; keep reading this one to its end.
                    pass
            if half_close and writer.can_write_eof():
                try:
                    writer.write_eof()
                except (ConnectionError, OSError):
                    pass
        finally:
            if eof is not None:
                eof.set()

    async def server_closed(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until the server closed its end of the relayed connection."""
        try:
            await asyncio.wait_for(self._server_eof.wait(), timeout)
        except asyncio.TimeoutError:
            raise ScenarioError(
                f"the server did not close a connection within {timeout}s of losing its client"
            ) from None

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for t in self._tasks:
            t.cancel()
        for w in self._writers:
            w.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
