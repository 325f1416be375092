"""The wheel: one distribution namespace, nothing generic in site-packages, a CLI that runs.

The layer folders sit at the top of the repository but must install as ``acmeflow.*``:
a wheel that put ``workflows`` or ``worker`` next to ``acmeflow`` would collide with the next
package that ships a module of that name.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "--wheel-dir",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("acmeflow-*.whl")
    return built


def top_level_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/", 1)[0] for name in archive.namelist()}


def test_the_wheel_holds_only_the_acmeflow_package(wheel: Path) -> None:
    names = top_level_names(wheel) - {n for n in top_level_names(wheel) if n.endswith(".dist-info")}
    assert names == {"acmeflow"}


def test_every_layer_folder_is_inside_the_namespace(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    for module in (
        "acmeflow/workflows/order.py",
        "acmeflow/activities/acme_order.py",
        "acmeflow/worker/build.py",
        "acmeflow/k8s_bridge/bridge.py",
        "acmeflow/contracts/progress.py",
        "acmeflow/workflows/py.typed",
    ):
        assert module in files, module


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    """A subpackage missing from pyproject's list would be left out of the wheel silently."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join([package, *init.parent.relative_to(REPO / folder).parts])
        for package, folder in setuptools["package-dir"].items()
        for init in (REPO / folder).rglob("__init__.py")
    }
    assert found == set(setuptools["packages"])


def test_the_installed_wheel_runs_its_cli_and_puts_nothing_else_in_site_packages(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr
    helped = subprocess.run(
        [str(venv / "bin" / "acmeflow"), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    for command in ("worker", "bridge", "solver", "issue", "dev"):
        assert command in helped.stdout
    (site,) = (venv / "lib").glob("python3*/site-packages")
    for generic in ("workflows", "activities", "worker", "k8s_bridge"):
        assert not (site / generic).exists(), f"the wheel installed a top-level {generic}/"
    imported = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import acmeflow.workflows.order, acmeflow.k8s_bridge.bridge; print('ok')",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert imported.stdout.strip() == "ok", imported.stderr
