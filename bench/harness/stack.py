"""The stack a benchmark runs on, its processes, and what every benchmark script does.

A script takes ``--state-dir`` (a stack ``acmeflow dev up`` left running) or starts an
embedded stack of its own in a temporary directory and stops it at the end, also when
SIGTERM arrives.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.acmeflow_api import DevStack, StackInfo

COMPONENTS = ("acmeflow-bridge", "acmeflow-worker")
"""acmeflow's own processes in a stack started with them."""


@contextlib.contextmanager
def acmeflow_stack(state_dir: Path | None, *, with_acmeflow: bool) -> Iterator[StackInfo]:
    """The stack in ``state_dir`` (left running), or a fresh one, stopped after.

    ``with_acmeflow``: the stack runs acmeflow's worker and bridge, as ``acmeflow dev up``
    runs them (a fresh stack starts them; a given one must run them).
    """
    if state_dir is not None:
        stack = StackInfo.load(state_dir)
        needed = COMPONENTS if with_acmeflow else ()
        missing = [n for n in needed if not (state_dir / "pids" / f"{n}.pid").exists()]
        if missing:
            raise SystemExit(f"{state_dir} runs no {', '.join(missing)}; use `acmeflow dev up`")
        yield stack
        return
    with tempfile.TemporaryDirectory(prefix="acmeflow-bench-") as directory:
        dev = DevStack.create(Path(directory), with_acmeflow=with_acmeflow)
        what = " with worker and bridge" if with_acmeflow else ""
        print(f"starting an embedded stack{what} in {directory}", flush=True)
        try:
            yield dev.up()
        finally:
            dev.down()


def stack_pids(stack: StackInfo, names: Iterable[str] | None = None) -> dict[str, int]:
    """The processes the state directory recorded, by name: all of them, or ``names``."""
    paths = (
        sorted((stack.state_dir / "pids").glob("*.pid"))
        if names is None
        else [stack.state_dir / "pids" / f"{name}.pid" for name in names]
    )
    pids = {}
    for path in paths:
        with contextlib.suppress(OSError, ValueError):
            pids[path.stem] = int(path.read_text())
    return pids


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """The script's options: its docstring's first paragraph as description, ``--state-dir``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--state-dir", type=Path, help="use this running stack (`acmeflow dev up`)")
    return parser


def stop_on_sigterm() -> None:
    """SIGTERM ends the script as Ctrl-C would, so its namespace, worker and stack go."""
    signal.signal(signal.SIGTERM, _exit_on_term)


def _exit_on_term(*_: object) -> None:
    raise SystemExit(143)


def print_json_line(figures: dict[str, Any]) -> None:
    """The script's figures as one JSON object on one line (the last a script prints)."""
    print(json.dumps(figures), flush=True)
