"""Answer ``GET /.well-known/acme-challenge/<token>`` from a shared token source.

The responder holds no state of its own: tokens come from a directory the workers write
(standalone) or from a watch cache of Challenge resources (in a cluster), so replicas
are interchangeable and a restarted replica answers at once.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

from acmeflow.activities.challenge_values import HTTP01_PATH_PREFIX
from acmeflow.activities.http01 import DirectoryStore

log = logging.getLogger(__name__)


def normalize_host(host: str) -> str:
    """A Host header or DNS name as compared with a Challenge's dnsName.

    Lowercase, without a ``:port``, a trailing dot or the brackets of an IPv6 address.
    """
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


class TokenSource(Protocol):
    def key_for(self, token: str, host: str) -> str | None:
        """The key authorization to serve for ``token`` requested for ``host``."""

    def ready(self) -> bool:
        """Whether the source has loaded what it serves (for the readiness probe)."""


class DirectoryTokens:
    """Tokens the workers wrote as files (see ``acmeflow.activities.http01.DirectoryStore``)."""

    def __init__(self, directory: Path) -> None:
        self._store = DirectoryStore(directory)

    def key_for(self, token: str, host: str) -> str | None:
        return self._store.lookup(token)

    def ready(self) -> bool:
        return True


class FirstMatch:
    """Several sources; the first that knows a token answers."""

    def __init__(self, sources: list[TokenSource]) -> None:
        self._sources = sources

    def key_for(self, token: str, host: str) -> str | None:
        for source in self._sources:
            key = source.key_for(token, host)
            if key is not None:
                return key
        return None

    def ready(self) -> bool:
        return all(source.ready() for source in self._sources)


def _handler(tokens: TokenSource) -> type[BaseHTTPRequestHandler]:
    class ChallengeResponder(BaseHTTPRequestHandler):
        server_version = "acmeflow-solver"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/healthz", "/readyz"):
                ok = path == "/healthz" or tokens.ready()
                self._reply(
                    HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE,
                    "ok" if ok else "loading",
                )
                return
            if not path.startswith(HTTP01_PATH_PREFIX):
                self._reply(HTTPStatus.NOT_FOUND, "not found")
                return
            token = path.removeprefix(HTTP01_PATH_PREFIX)
            host = normalize_host(self.headers.get("Host") or "")
            key = tokens.key_for(token, host) if token else None
            if key is None:
                log.info("unknown token %s for host %s", token, host)
                self._reply(HTTPStatus.NOT_FOUND, "unknown token")
                return
            self._reply(HTTPStatus.OK, key)

        def _reply(self, status: HTTPStatus, body: str) -> None:
            payload = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return ChallengeResponder


class SolverServer:
    """The HTTP server; ``serve_forever`` in the foreground or ``start`` in a thread."""

    def __init__(self, tokens: TokenSource, host: str, port: int) -> None:
        self._httpd = ThreadingHTTPServer((host, port), _handler(tokens))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.5)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop a server started with ``start`` (from another thread)."""
        self._httpd.shutdown()
        self.close()

    def close(self) -> None:
        self._httpd.server_close()
