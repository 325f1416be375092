"""``acmeflow solver --store-dir``: the standalone responder serving token files, as a process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from acmeflow.activities.http01 import DirectoryStore
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.contracts.issuer import Http01Ingress, SolverConfig
from tests.solver.solver_process import REPO, Reply, SolverProcess, running_solver


def challenge(token: str, key: str) -> ChallengeSpec:
    return ChallengeSpec(
        name="c",
        namespace="",
        order_name="o",
        dns_name="dir.example.com",
        wildcard=False,
        type="HTTP-01",
        token=token,
        key=key,
        url="https://ca.invalid/chall",
        authorization_url="https://ca.invalid/authz",
        solver=SolverConfig(http01=Http01Ingress()),
    )


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    return DirectoryStore(tmp_path / "tokens")


@pytest.fixture
def solver(tmp_path: Path, store: DirectoryStore) -> Iterator[SolverProcess]:
    with running_solver(
        "--store-dir", str(store.directory), log_path=tmp_path / "solver.log"
    ) as process:
        yield process


def test_serves_a_published_token_until_it_is_withdrawn(
    solver: SolverProcess, store: DirectoryStore
) -> None:
    spec = challenge("tok-dir-1", "tok-dir-1.thumbprint")
    assert solver.token(spec.token, spec.dns_name).status == 404

    store.publish(spec)
    reply = solver.token(spec.token, spec.dns_name)
    assert (reply.status, reply.body) == (200, "tok-dir-1.thumbprint")
    # The directory store does not know names: any Host gets the key, as before.
    assert solver.token(spec.token, "other.example.com:8080").status == 200

    store.withdraw(spec)
    assert solver.token(spec.token, spec.dns_name).status == 404


def test_unknown_tokens_and_other_paths_are_404(solver: SolverProcess) -> None:
    assert solver.token("never-published", "dir.example.com").status == 404
    assert solver.token("", "dir.example.com").status == 404
    assert solver.token("..", "dir.example.com").status == 404
    assert solver.get("/").status == 404
    assert solver.get("/.well-known/other").status == 404


def test_health_and_readiness(solver: SolverProcess) -> None:
    assert solver.get("/healthz") == Reply(200, "ok")
    assert solver.get("/healthz?probe=1") == Reply(200, "ok")
    assert solver.get("/readyz") == Reply(200, "ok")


def test_stops_on_sigterm(solver: SolverProcess) -> None:
    assert solver.terminate() == 0


def test_refuses_to_start_without_a_token_source() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "acmeflow.cli", "solver", "--listen", "127.0.0.1:0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "give --store-dir (or --kubernetes)" in result.stderr
