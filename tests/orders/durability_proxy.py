"""A TLS reverse proxy in front of one Pebble that counts the orders it creates.

The issuer under test talks to the proxy as if it were the CA. Pebble builds every URL
it hands out (directory, ``Location``, ``Link``, order and authorization bodies) from the
request's ``Host`` (``relativeEndpoint`` in Pebble's ``wfe``), so forwarding the client's
``Host`` unchanged keeps every later request on the proxy; ``start`` checks that.

Because each test has its own proxy, counting here is immune to other traffic on the
same Pebble. The proxy can also hold chosen requests, before or after Pebble saw them, so
a test can kill the worker while a protocol step is in flight, and it can answer chosen
requests itself with an ACME problem Pebble would not send on cue: ``rateLimited`` (429
with Retry-After, in seconds or as an HTTP date) or ``badNonce`` (400 with a fresh
Replay-Nonce from Pebble, so the client can retry). Every exchange records when it came.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from acmeflow.devstack.tls import KeyPair, issue_leaf

# Headers that describe one hop, not the message; the proxy sets its own.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
REFUSAL_DETAIL = "answered by the test's proxy in the CA's place"
"""The problem document's ``detail`` of every refusal the proxy answers itself."""
_UPSTREAM_TIMEOUT_S = 30.0
_HOLD_LIMIT_S = 120.0

Stage = Literal["request", "response"]
"""Hold before Pebble sees the request, or after Pebble answered but before the client."""


@dataclass
class Exchange:
    """One request the proxy handled and what became of it."""

    method: str
    path: str
    status: int
    """Pebble's status; 0 when the request was dropped before reaching Pebble; the proxy's
    own when it answered in Pebble's place (``refused``)."""
    location: str = ""
    delivered_to_client: bool = True
    refused: str = ""
    """The ACME problem code the proxy answered with instead of Pebble, if it did."""
    retry_after: str = ""
    """The Retry-After header the proxy sent with its refusal."""
    at: float = field(default_factory=time.time)
    """When the proxy received the request (Unix time)."""

    def earliest_retry(self) -> float:
        """The Unix time before which the client was asked not to come back."""
        if self.retry_after.isdigit():
            return self.at + int(self.retry_after)
        return parsedate_to_datetime(self.retry_after).timestamp()


@dataclass
class HeldRequest:
    """A request parked in the proxy until the test delivers or drops it."""

    method: str
    path: str
    stage: Stage
    status: int = 0
    """Pebble's answer, when held at the ``response`` stage."""
    _decided: threading.Event = field(default_factory=threading.Event)
    _deliver: bool = False

    def deliver(self) -> None:
        """Let it continue: to Pebble (request stage) or to the client (response stage)."""
        self._deliver = True
        self._decided.set()

    def drop(self) -> None:
        """Close the client's connection without an answer (and without Pebble, if not yet)."""
        self._deliver = False
        self._decided.set()

    def _wait(self) -> bool:
        self._decided.wait(_HOLD_LIMIT_S)
        return self._deliver


@dataclass(frozen=True)
class _HoldRule:
    method: str
    path_prefix: str
    stage: Stage


@dataclass
class _RefusalRule:
    """Answer the next ``remaining`` matching POSTs with ``problem`` instead of Pebble."""

    path_prefix: str
    remaining: int
    problem: str
    status: int
    retry_after_s: int = 0
    as_http_date: bool = False

    def retry_after(self) -> str:
        if not self.retry_after_s:
            return ""
        if not self.as_http_date:
            return str(self.retry_after_s)
        # Rounded up to the next whole second, so the date never asks for less.
        later = datetime.now(UTC) + timedelta(seconds=self.retry_after_s + 1)
        return format_datetime(later.replace(microsecond=0), usegmt=True)


class AcmeProxy:
    """HTTPS on 127.0.0.1 forwarding to one Pebble; counts new-orders, holds on request."""

    def __init__(self, upstream_directory_url: str, *, tls_ca: KeyPair, work_dir: Path) -> None:
        upstream = urlsplit(upstream_directory_url)
        assert upstream.hostname and upstream.port, upstream_directory_url
        self._upstream = (upstream.hostname, upstream.port)
        self._directory_path = upstream.path
        self._upstream_tls = ssl.create_default_context(cafile=str(tls_ca.cert_path))
        leaf = issue_leaf(
            tls_ca,
            work_dir,
            "acme-proxy",
            common_name="localhost",
            dns_names=("localhost",),
            ip_addresses=("127.0.0.1",),
        )
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_tls.load_cert_chain(leaf.cert_path, leaf.key_path)
        self._server = _ProxyServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="acme-proxy", daemon=True
        )
        self._lock = threading.Lock()
        self._rules: list[_HoldRule] = []
        self._refusals: list[_RefusalRule] = []
        self._held: list[HeldRequest] = []
        self._exchanges: list[Exchange] = []
        self.new_order_path = ""
        self.new_nonce_path = ""

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}{self._directory_path}"

    def start(self) -> AcmeProxy:
        """Serve, then learn Pebble's new-order path from its directory, read through us."""
        self._thread.start()
        with contextlib.closing(
            http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self._upstream_tls, timeout=10
            )
        ) as connection:
            connection.request("GET", self._directory_path, headers={"User-Agent": "acmeflow-test"})
            response = connection.getresponse()
            directory = json.loads(response.read())
        new_order = urlsplit(str(directory["newOrder"]))
        # The whole point of forwarding Host: Pebble must send clients back to the proxy.
        assert new_order.netloc == f"127.0.0.1:{self.port}", (
            f"Pebble built {directory['newOrder']} from a proxied request; it must use the "
            "request's Host so every later request passes through the proxy"
        )
        self.new_order_path = new_order.path
        self.new_nonce_path = urlsplit(str(directory["newNonce"])).path
        return self

    def close(self) -> None:
        with self._lock:
            self._rules.clear()
            held = list(self._held)
        for request in held:
            request.drop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> AcmeProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- what the test sees and steers --------------------------------------------------

    def hold(self, method: str, path_prefix: str, *, stage: Stage = "request") -> None:
        """Park every later ``method`` request under ``path_prefix`` at ``stage``."""
        with self._lock:
            self._rules.append(_HoldRule(method, path_prefix, stage))

    def stop_holding(self) -> None:
        with self._lock:
            self._rules.clear()

    def rate_limit(
        self, path_prefix: str, *, times: int, retry_after_s: int, as_http_date: bool = False
    ) -> None:
        """Answer the next ``times`` POSTs under ``path_prefix`` with 429 ``rateLimited``.

        Retry-After is ``retry_after_s`` seconds, or that long from now as an HTTP date.
        """
        rule = _RefusalRule(
            path_prefix, times, "rateLimited", 429, retry_after_s, as_http_date=as_http_date
        )
        with self._lock:
            self._refusals.append(rule)

    def reject_nonces(self, path_prefix: str, *, times: int) -> None:
        """Answer the next ``times`` POSTs under ``path_prefix`` with 400 ``badNonce``."""
        with self._lock:
            self._refusals.append(_RefusalRule(path_prefix, times, "badNonce", 400))

    def refused(self, problem: str) -> list[Exchange]:
        """The requests the proxy answered with ``problem`` itself, oldest first."""
        return [e for e in self.exchanges if e.refused == problem]

    @property
    def held(self) -> list[HeldRequest]:
        """Requests parked now, oldest first (decided ones are removed)."""
        with self._lock:
            return [r for r in self._held if not r._decided.is_set()]

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def posts_to(self, path_prefix: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "POST" and e.path.startswith(path_prefix)]

    @property
    def orders_created(self) -> list[str]:
        """URL of every order Pebble created through this proxy (a 201 to new-order)."""
        return [e.location for e in self.posts_to(self.new_order_path) if e.status == 201]

    # -- the proxy itself ------------------------------------------------------------------

    def _refusal(self, method: str, path: str) -> _RefusalRule | None:
        """The refusal rule this request uses up, if one still has answers left."""
        with self._lock:
            for rule in self._refusals:
                if method == "POST" and rule.remaining and path.startswith(rule.path_prefix):
                    rule.remaining -= 1
                    return rule
        return None

    def _fresh_nonce(self, host: str) -> str:
        """A nonce Pebble issued just now, for a badNonce answer the client can retry."""
        status, _, headers, data = self._forward(
            "GET", self.new_nonce_path, [("Host", host), ("User-Agent", "acmeflow-test")], b""
        )
        nonce = next((v for k, v in headers if k.lower() == "replay-nonce"), "")
        assert nonce, f"Pebble gave no Replay-Nonce (HTTP {status}): {headers} {data!r}"
        return nonce

    def _hold_stage(self, method: str, path: str) -> Stage | None:
        with self._lock:
            for rule in self._rules:
                if rule.method == method and path.startswith(rule.path_prefix):
                    return rule.stage
        return None

    def _park(self, request: HeldRequest) -> bool:
        with self._lock:
            self._held.append(request)
        try:
            return request._wait()
        finally:
            with self._lock:
                self._held.remove(request)

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPSConnection(
            *self._upstream, context=self._upstream_tls, timeout=_UPSTREAM_TIMEOUT_S
        )
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    connection.putheader(name, value)
            if body or method == "POST":
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            return response.status, response.reason, response.getheaders(), response.read()
        finally:
            connection.close()

    def _wrap(self, raw: socket.socket) -> ssl.SSLSocket:
        return self._server_tls.wrap_socket(raw, server_side=True)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, proxy: AcmeProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        # TLS per connection in the connection's own thread, so a slow handshake
        # never blocks accepting other connections.
        try:
            tls = self.proxy._wrap(request)
        except (OSError, ssl.SSLError):
            return
        with tls:
            _ProxyHandler(tls, client_address, self)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        self._proxy()

    def do_HEAD(self) -> None:
        self._proxy()

    def do_POST(self) -> None:
        self._proxy()

    def _proxy(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        refusal = proxy._refusal(self.command, self.path)
        if refusal is not None:
            self._refuse(refusal)
            return
        stage = proxy._hold_stage(self.command, self.path)
        if stage == "request" and not proxy._park(HeldRequest(self.command, self.path, stage)):
            proxy._record(Exchange(self.command, self.path, 0, delivered_to_client=False))
            self.close_connection = True
            return
        try:
            status, reason, headers, data = proxy._forward(
                self.command, self.path, list(self.headers.items()), body
            )
        except OSError as error:
            self.send_error(502, f"upstream: {error}")
            return
        location = next((v for k, v in headers if k.lower() == "location"), "")
        exchange = Exchange(self.command, self.path, status, location)
        proxy._record(exchange)
        if stage == "response" and not proxy._park(
            HeldRequest(self.command, self.path, stage, status=status)
        ):
            exchange.delivered_to_client = False
            self.close_connection = True
            return
        self._answer(status, reason, headers, data)

    def _refuse(self, rule: _RefusalRule) -> None:
        """Answer as an ACME server refusing the request, without asking Pebble."""
        proxy = self.server.proxy
        exchange = Exchange(
            self.command,
            self.path,
            rule.status,
            refused=rule.problem,
            retry_after=rule.retry_after(),
        )
        problem = {
            "type": f"urn:ietf:params:acme:error:{rule.problem}",
            "detail": REFUSAL_DETAIL,
            "status": rule.status,
        }
        headers = [
            ("Content-Type", "application/problem+json"),
            ("Replay-Nonce", proxy._fresh_nonce(self.headers.get("Host", ""))),
        ]
        if exchange.retry_after:
            headers.append(("Retry-After", exchange.retry_after))
        proxy._record(exchange)
        reason = "Too Many Requests" if rule.status == 429 else "Bad Request"
        self._answer(rule.status, reason, headers, json.dumps(problem).encode())

    def _answer(
        self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes
    ) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(OSError):
                self.wfile.write(data)
