"""Stand-ins for "the internet" that keep a challenge in one step until the test moves on.

- ``RefusingHttp01Server``: where a worker's HTTP-01 self-check looks, answering 404, so
  the order sits in the self-check loop with its token presented.
- ``EmptyDnsServer``: an authoritative server (for the DNS-01 propagation check) that
  knows no TXT value, so the order sits in the self-check loop with its TXT presented.
- ``HoldingHttp01Gate``: where a CA's HTTP-01 validation connects; it holds each request
  until released, then forwards it to the real responder, so the authorization stays
  ``pending`` while the challenge is ``processing``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import dns.exception
import dns.flags
import dns.message

_HOLD_LIMIT_S = 60.0


class _GateServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class _CountingHttpServer:
    """A plain HTTP server on 127.0.0.1 in its own thread, counting what it was asked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[str] = []
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                with gate._lock:
                    gate.requests.append(self.path)
                gate._answer(self)

        self._server = _GateServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    with contextlib.suppress(OSError):
        handler.wfile.write(body)


class RefusingHttp01Server(_CountingHttpServer):
    """Answers 404 to everything: a self-check through it never passes."""

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        _reply(handler, 404, b"not served by this gate\n")


class HoldingHttp01Gate(_CountingHttpServer):
    """Holds each request until ``release``, then forwards it (same path and Host)."""

    def __init__(self, target_port: int) -> None:
        super().__init__()
        self._target_port = target_port
        self._released = threading.Event()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Requests held right now."""
        with self._lock:
            return self._waiting

    def release(self) -> None:
        """Forward what is held and everything after."""
        self._released.set()

    def close(self) -> None:
        self.release()
        super().close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._waiting += 1
        try:
            self._released.wait(_HOLD_LIMIT_S)
        finally:
            with self._lock:
                self._waiting -= 1
        connection = http.client.HTTPConnection("127.0.0.1", self._target_port, timeout=10)
        try:
            connection.request(
                "GET", handler.path, headers={"Host": handler.headers.get("Host", "")}
            )
            response = connection.getresponse()
            _reply(handler, response.status, response.read())
        except OSError as error:
            _reply(handler, 502, f"gate could not reach the responder: {error}\n".encode())
        finally:
            connection.close()


class EmptyDnsServer:
    """UDP DNS on 127.0.0.1 answering every query authoritatively with no records."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._lock = threading.Lock()
        self.questions: list[str] = []

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                wire, client = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                continue
            with self._lock:
                self.questions += [q.to_text() for q in query.question]
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            with contextlib.suppress(OSError):
                self._socket.sendto(response.to_wire(), client)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._socket.close()
