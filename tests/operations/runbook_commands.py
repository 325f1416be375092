"""The shell commands of ``docs/runbook.md``, run as an operator would run them.

Convention: a fenced block tagged ``sh <name>`` is a command the runbook shows and a test
runs; ``text`` blocks are sample output and are not run. Words in angle brackets
(``<namespace>``, ``<order>`` ...) are placeholders a test substitutes. Each block runs in
bash after the runbook's ``env`` block (``eval "$(acmeflow dev env)"``), so ``kubectl``
and ``temporal`` find the stack the same way they do for a person.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from acmeflow.devstack.stack import StackInfo

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = REPO / "docs" / "runbook.md"
ENV_BLOCK = "env"
PLACEHOLDERS = frozenset(
    {"namespace", "certificate", "order", "challenge", "domain", "issuer", "age"}
)
_FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
_PLACEHOLDER = re.compile(r"<([a-z][a-z-]*)>")


class RunbookError(AssertionError):
    """A runbook command failed, or the runbook breaks its own conventions."""


def parse_blocks(markdown: str) -> dict[str, str]:
    """``{name: body}`` of every ``sh <name>`` block, in the order they appear."""
    blocks: dict[str, str] = {}
    for match in _FENCE.finditer(markdown):
        info = match["info"].split()
        if not info or info[0] not in ("sh", "bash", "shell", "console"):
            continue
        if info[0] != "sh" or len(info) != 2:
            raise RunbookError(f"a shell block must be tagged `sh <name>`, not {match['info']!r}")
        name = info[1]
        if name in blocks:
            raise RunbookError(f"two shell blocks are named {name!r}")
        blocks[name] = match["body"]
    return blocks


def placeholders(body: str) -> set[str]:
    return set(_PLACEHOLDER.findall(body))


@dataclass
class CommandResult:
    name: str
    script: str
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Runbook:
    """The runbook's commands; ``run`` substitutes placeholders and remembers what ran."""

    stack: StackInfo
    blocks: dict[str, str]
    ran: set[str] = field(default_factory=set)
    timeout_s: float = 120.0

    @classmethod
    def load(cls, stack: StackInfo, path: Path = RUNBOOK) -> Runbook:
        return cls(stack, parse_blocks(path.read_text()))

    def script(self, name: str, values: dict[str, str]) -> str:
        body = self.blocks[name]
        missing = placeholders(body) - set(values)
        if missing:
            raise RunbookError(f"block {name!r} needs values for {sorted(missing)}")
        for key, value in values.items():
            body = body.replace(f"<{key}>", value)
        return body

    def environment(self) -> dict[str, str]:
        """What a person has before ``eval "$(acmeflow dev env)"``: acmeflow on PATH."""
        env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["ACMEFLOW_STATE_DIR"] = str(self.stack.state_dir)
        for leftover in ("KUBECONFIG", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"):
            env.pop(leftover, None)
        return env

    def run(self, name: str, *, check: bool = True, **values: str) -> CommandResult:
        """Run block ``name`` (after ``env``) with ``values`` for its placeholders."""
        script = self.script(name, values)
        full = f"set -euo pipefail\n{self.blocks[ENV_BLOCK]}\n{script}"
        completed = subprocess.run(
            ["bash", "-c", full],
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            env=self.environment(),
            check=False,
        )
        self.ran.update({ENV_BLOCK, name})
        result = CommandResult(
            name, script, completed.returncode, completed.stdout, completed.stderr
        )
        if check and completed.returncode != 0:
            raise RunbookError(
                f"runbook command {name!r} failed ({completed.returncode}):\n{script}\n"
                f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
            )
        return result
