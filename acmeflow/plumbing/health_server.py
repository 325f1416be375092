"""The metrics port of the worker and the bridge: ``/metrics``, ``/healthz`` and ``/readyz``.

The Temporal SDK's Prometheus endpoint serves only ``/metrics``, so the SDK runtime binds an
internal ``127.0.0.1`` port (:func:`acmeflow.plumbing.temporal_connection.relayed_metrics_address`)
and this server, on ``--metrics-bind``, relays ``/metrics`` to it unchanged.

- ``/healthz``: 200 while the process's event loop answers (the liveness probe).
- ``/readyz``: 200 only when every readiness check passes, else 503; the body has one line
  per check saying what is ready or not and why, and ``shutting down`` once SIGTERM started
  the drain (the readiness probe).

A small HTTP/1.1 server on asyncio streams: one request per connection, then close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 5.0
TEMPORAL_CHECK_TIMEOUT = timedelta(seconds=2)


@dataclass(frozen=True)
class Readiness:
    """One check's answer: ``name: detail`` in the /readyz body."""

    name: str
    ready: bool
    detail: str


ReadinessCheck = Callable[[], Awaitable[Readiness]]


class TemporalReadiness:
    """Ready while the Temporal frontend answers a cheap GetSystemInfo call."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.client: Client | None = None
        """Set once connected; until then the check says it is connecting."""

    async def __call__(self) -> Readiness:
        if self.client is None:
            return Readiness("temporal", False, f"not connected: connecting to {self.address}")
        try:
            await self.client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=TEMPORAL_CHECK_TIMEOUT
            )
        except (RPCError, RuntimeError, OSError, TimeoutError) as err:
            return Readiness("temporal", False, f"not connected to {self.address}: {err}")
        return Readiness("temporal", True, f"connected to {self.address}")


class HealthServer:
    """Serves /metrics (relayed), /healthz and /readyz on ``bind`` (``host:port``)."""

    def __init__(
        self,
        *,
        bind: str,
        metrics_upstream: str,
        checks: Sequence[ReadinessCheck],
    ) -> None:
        self._bind = bind
        self._metrics_upstream = metrics_upstream
        self._checks = list(checks)
        self._shutting_down = ""
        self._server: asyncio.Server | None = None

    def shutting_down(self, reason: str) -> None:
        """From now on /readyz answers 503 with ``reason``; /healthz stays 200."""
        self._shutting_down = reason

    async def __aenter__(self) -> HealthServer:
        host, _, port = self._bind.rpartition(":")
        self._server = await asyncio.start_server(self._serve, host or None, int(port))
        log.info("serving /metrics, /healthz and /readyz on %s", self._bind)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                request = await reader.readuntil(b"\r\n\r\n")
                method, _, rest = request.decode("latin-1").partition(" ")
                path = rest.partition(" ")[0].partition("?")[0]
                if method not in ("GET", "HEAD"):
                    writer.write(response(405, "method not allowed\n"))
                elif path == "/metrics":
                    writer.write(await self._relay_metrics())
                elif path == "/healthz":
                    writer.write(response(200, "ok\n"))
                elif path == "/readyz":
                    writer.write(await self._readyz())
                else:
                    writer.write(response(404, "not found: try /metrics, /healthz, /readyz\n"))
                await writer.drain()
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _readyz(self) -> bytes:
        if self._shutting_down:
            return response(503, f"not ready: shutting down: {self._shutting_down}\n")
        answers = await asyncio.gather(*(check() for check in self._checks))
        lines = [f"{answer.name}: {answer.detail}" for answer in answers]
        not_ready = [answer.name for answer in answers if not answer.ready]
        if not_ready:
            return response(503, "\n".join([f"not ready: {', '.join(not_ready)}", *lines, ""]))
        return response(200, "\n".join(["ready", *lines, ""]))

    async def _relay_metrics(self) -> bytes:
        """The SDK runtime's response, passed through byte for byte."""
        host, _, port = self._metrics_upstream.rpartition(":")
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        except OSError as err:
            return response(502, f"metrics endpoint unavailable: {err}\n")
        try:
            upstream_writer.write(
                f"GET /metrics HTTP/1.1\r\nHost: {self._metrics_upstream}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await upstream_writer.drain()
            return await upstream_reader.read()
        finally:
            upstream_writer.close()
            with contextlib.suppress(OSError):
                await upstream_writer.wait_closed()


def response(status: int, body: str) -> bytes:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 502: "Bad Gateway"}.get(
        status, "Service Unavailable"
    )
    payload = body.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + payload
