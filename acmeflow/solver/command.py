"""``acmeflow solver``: run the HTTP-01 responder.

Tokens come from directories the workers write (``--store-dir``, standalone) and/or from
the Challenge resources of a cluster (``--kubernetes``, watched in a background thread);
with both, the first source that knows a token answers.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from acmeflow.plumbing.addresses import split_host_port
from acmeflow.plumbing.kubernetes_client import kubernetes_api_client
from acmeflow.solver.challenge_cache import ChallengeCache, KubernetesChallengeFeed
from acmeflow.solver.server import DirectoryTokens, FirstMatch, SolverServer, TokenSource

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
    solver.add_argument(
        "--kubernetes",
        action="store_true",
        help="serve the tokens of HTTP-01 Challenge resources (list and watch challenges)",
    )
    solver.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="with --kubernetes: kubeconfig to use (default: the in-cluster service account)",
    )
    solver.add_argument(
        "--namespace",
        default="",
        help="with --kubernetes: watch Challenges of this namespace only (default: all)",
    )
    solver.set_defaults(run=run)


def token_sources(args: argparse.Namespace) -> list[TokenSource]:
    """Directory sources first, then the Challenge cache (not yet started)."""
    sources: list[TokenSource] = [DirectoryTokens(directory) for directory in args.store_dir]
    if getattr(args, "kubernetes", False):
        feed = KubernetesChallengeFeed(
            kubernetes_api_client(args.kubeconfig), namespace=args.namespace
        )
        sources.append(ChallengeCache(feed, description=feed.describe()))
    return sources


def run(args: argparse.Namespace) -> int:
    sources = token_sources(args)
    if not sources:
        raise SystemExit("acmeflow solver: give --store-dir (or --kubernetes) to serve tokens")
    caches = [source for source in sources if isinstance(source, ChallengeCache)]
    host, port = split_host_port(args.listen, 8089)
    server = SolverServer(FirstMatch(sources), host, port)
    signal.signal(signal.SIGTERM, _exit_on_term)
    for cache in caches:
        cache.start()
    log.info("serving HTTP-01 tokens on %s:%d", host, server.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for cache in caches:
            cache.stop()
        server.close()
    return 0


def _exit_on_term(*_: object) -> None:
    raise KeyboardInterrupt
