"""uvicorn's h11 protocol with a deadline for request headers: a client that has not sent a whole
request head within `--timeout-s` (on a new connection, or after a keep-alive response) gets 408 and
the connection is closed (an idle one is closed without a word), so slow-header clients cannot pile up
open connections. (`--timeout-s`
already covers the body read and the model's work.)"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

LATE = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderDeadlineProtocol(H11Protocol):
    header_timeout_s: float = 30.0  # kiln serve sets it from --timeout-s in every server process

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._started = True  # part of a request head has arrived
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a whole request head arrived
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request's head has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._started = False
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._late)

    def _disarm(self) -> None:
        timer: Any = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
        self._header_timer = None

    def _late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if getattr(self, "_started", False):  # an idle keep-alive connection is just closed
                self.transport.write(LATE)
            self.transport.close()


def uvicorn_options(timeout_s: float) -> dict[str, Any]:
    """What kiln serve passes to uvicorn: the header deadline protocol and a drain as long as a request may take."""
    HeaderDeadlineProtocol.header_timeout_s = timeout_s
    return {"http": HeaderDeadlineProtocol, "timeout_graceful_shutdown": timeout_s + 5.0}
