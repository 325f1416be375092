"""Temporal's time-skipping test server, installed from Maven Central, cached by version.

``WorkflowEnvironment.start_time_skipping()`` downloads a native build of this server,
which cannot be had here; the same server is published as a Java application
(``io.temporal:temporal-test-server``). Maven fetches it with its libraries once into
``~/.cache/acmeflow/temporal-test-server/<version>/lib``, beside a wrapper script that
``start_time_skipping(test_server_existing_path=...)`` runs. Needs ``java`` and ``mvn``
(``make system`` installs both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from acmeflow.devstack.go_builds import cache_base

TEST_SERVER_VERSION = "1.31.0"
MAIN_CLASS = "io.temporal.testserver.TestServer"
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>acmeflow.local</groupId>
  <artifactId>temporal-test-server-fetch</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>io.temporal</groupId>
      <artifactId>temporal-test-server</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def install_dir() -> Path:
    return cache_base() / "temporal-test-server" / TEST_SERVER_VERSION


def server_command() -> Path:
    """The executable to hand to ``start_time_skipping(test_server_existing_path=...)``."""
    return install_dir() / "temporal-test-server"


def wrapper_script(lib: Path) -> str:
    return f'#!/bin/sh\nexec java -cp "{lib}/*" {MAIN_CLASS} "$@"\n'


def install(log: Path | None = None) -> float:
    """Fetch the server into the cache unless present; return seconds spent.

    Staged beside the target and renamed into place, so an interrupted fetch leaves no
    half-filled directory that later runs would take for an installation.
    """
    target = install_dir()
    if server_command().is_file():
        return 0.0
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"installing the test server needs {' and '.join(missing)}")
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".staging-") as tmp:
        staging = Path(tmp) / "server"
        staging.mkdir()
        (staging / "pom.xml").write_text(_POM.format(version=TEST_SERVER_VERSION))
        _mvn(["dependency:copy-dependencies", f"-DoutputDirectory={staging / 'lib'}"], staging, log)
        wrapper = staging / server_command().name
        wrapper.write_text(wrapper_script(target / "lib"))
        wrapper.chmod(0o755)
        try:
            os.rename(staging, target)
        except OSError:
            if not server_command().is_file():  # not merely another install winning the race
                raise
    return time.monotonic() - started


def _mvn(args: list[str], cwd: Path, log: Path | None) -> None:
    out = subprocess.run(
        ["mvn", "-q", "-B", *args], cwd=cwd, check=False, capture_output=True, text=True
    )
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"$ mvn {' '.join(args)}\n{out.stdout}{out.stderr}\n")
    if out.returncode != 0:
        raise RuntimeError(f"mvn {' '.join(args)} failed:\n{(out.stdout + out.stderr)[-4000:]}")


if __name__ == "__main__":
    seconds = install(Path(tempfile.gettempdir()) / "acmeflow-test-server.log")
    print(f"test server {TEST_SERVER_VERSION} ready at {server_command()} ({seconds:.0f}s)")
