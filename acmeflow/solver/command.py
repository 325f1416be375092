"""``acmeflow solver``: run the HTTP-01 responder."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from acmeflow.solver.server import DirectoryTokens, FirstMatch, SolverServer, TokenSource
from activities.challenge_spec import split_host_port

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    solver = subparsers.add_parser(
        "solver", help="serve HTTP-01 challenge tokens (run behind a Service on port 80)"
    )
    solver.add_argument(
        "--listen", default="0.0.0.0:8089", help="address to listen on (default 0.0.0.0:8089)"
    )
    solver.add_argument(
        "--store-dir",
        type=Path,
        action="append",
        default=[],
        help="serve tokens the workers wrote to this directory (repeatable)",
    )
    solver.set_defaults(run=run)


def token_sources(args: argparse.Namespace) -> list[TokenSource]:
    return [DirectoryTokens(directory) for directory in args.store_dir]


def run(args: argparse.Namespace) -> int:
    sources = token_sources(args)
    if not sources:
        raise SystemExit("acmeflow solver: give --store-dir (or --kubernetes) to serve tokens")
    host, port = split_host_port(args.listen, 8089)
    server = SolverServer(FirstMatch(sources), host, port)
    signal.signal(signal.SIGTERM, _exit_on_term)
    log.info("serving HTTP-01 tokens on %s:%d", host, server.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _exit_on_term(*_: object) -> None:
    raise KeyboardInterrupt
