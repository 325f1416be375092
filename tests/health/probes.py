"""HTTP probes against a real process's metrics port, and a TCP relay a test can cut."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable


def answered(
    bind: str, path: str, status: int, process: subprocess.Popen[bytes]
) -> Callable[[], str | None]:
    """A probe for wait_for: the body once ``path`` answers ``status``."""

    def probe() -> str | None:
        assert process.poll() is None, f"the process exited {process.returncode}"
        reply = get(bind, path)
        return reply[1] if reply and reply[0] == status else None

    return probe


def get(bind: str, path: str, timeout: float = 5.0) -> tuple[int, str] | None:
    """(status, body) of ``GET http://<bind><path>``; None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{bind}{path}", timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


class TcpRelay:
    """Relays 127.0.0.1:<port> to ``upstream`` until :meth:`cut` closes every connection."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = [self._listener]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self._upstream)
            except OSError:
                return
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        """Temporal becomes unreachable: no new connections, the open ones reset."""
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
