"""Where a process's CPU goes, sampled from outside with py-spy while a phase runs.

``py-spy record --format raw`` writes collapsed stacks: one line per distinct stack,
frames root first separated by ``;``, then the number of samples. Only the thread that
holds the GIL is sampled (``--gil``), so the samples are the Python CPU time that one
core bounds; the core SDK's Rust threads do not show (the worker's CPU seconds count
them). A function's *own* samples are those where it is the innermost frame; its *total*
those where it is anywhere on the stack. ``AREAS`` sorts frames by the code they belong
to, so that the shares answer "how much is the sandbox, the payload converter, the acme
client".
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_RATE = 100
"""Samples per second; py-spy's default."""
STOP_TIMEOUT_S = 60.0
"""How long py-spy may take to write its file after SIGINT."""

AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("workflow sandbox", ("temporalio/worker/workflow_sandbox/",)),
    ("imports (module loading)", ("<frozen importlib", "importlib/")),
    (
        "payload conversion (JSON, protobuf)",
        ("temporalio/converter", "/json/", "google/protobuf/", "dataclasses.py"),
    ),
    ("workflow instance (SDK)", ("temporalio/worker/_workflow_instance.py", "temporalio/workflow")),
    ("workflow worker (SDK)", ("temporalio/worker/_workflow.py",)),
    ("activity worker (SDK)", ("temporalio/worker/_activity.py", "temporalio/activity.py")),
    ("core SDK bridge", ("temporalio/bridge/",)),
    ("acme client", ("/acme/", "/josepy/")),
    ("HTTP (requests, urllib3, http, ssl)", ("/requests/", "/urllib3/", "http/client", "ssl.py")),
    ("cryptography", ("/cryptography/",)),
    ("DNS (dnspython)", ("/dns/",)),
    ("acmeflow workflows", ("/workflows/",)),
    ("acmeflow activities", ("/activities/", "/plumbing/")),
    ("asyncio (event loop, selectors)", ("asyncio/", "selectors.py")),
    ("threads, queues", ("threading.py", "concurrent/futures/", "queue.py")),
    ("logging", ("logging/",)),
    ("temporalio (other)", ("temporalio/",)),
)
"""The first area whose marker is in a frame's file names the frame's area."""
OTHER = "other"
"""Frames of no area: entry points and stdlib helpers (typing, abc, os.path ...)."""
FRAMEWORK = {"asyncio (event loop, selectors)", "threads, queues", OTHER}
"""Areas left out of the list of functions by total samples: they hold every stack."""

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str

    @classmethod
    def parse(cls, text: str) -> Frame:
        match = _FRAME.match(text.strip())
        if match is None:
            return cls(text.strip(), "")
        return cls(match["function"], match["file"])

    @property
    def label(self) -> str:
        short = "/".join(Path(self.file).parts[-2:]) if self.file else "?"
        return f"{self.function} ({short})"

    @property
    def area(self) -> str:
        # py-spy shortens paths to their import path (``json/encoder.py``).
        path = f"/{self.file}"
        return next((name for name, markers in AREAS if any(m in path for m in markers)), OTHER)


@dataclass
class Profile:
    """Samples by stack, summed into own and total samples by function and by area."""

    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    area_own: Counter[str] = field(default_factory=Counter)
    """Samples by the area of the innermost frame that has one: a stdlib helper
    (``typing``, ``os.path``) counts for the code that called it."""
    area_total: Counter[str] = field(default_factory=Counter)
    """Samples with a frame of the area anywhere on the stack (areas overlap)."""

    def add_stack(self, frames: list[Frame], count: int) -> None:
        if not frames:
            return
        self.samples += count
        self.own[frames[-1].label] += count
        areas = [f.area for f in frames]
        self.area_own[next((a for a in reversed(areas) if a != OTHER), OTHER)] += count
        for label in {f.label for f in frames if f.area not in FRAMEWORK}:
            self.total[label] += count
        for area in {f.area for f in frames}:
            self.area_total[area] += count

    def shares(self, counter: Counter[str], top: int) -> list[tuple[str, float]]:
        return [(k, v / max(1, self.samples)) for k, v in counter.most_common(top)]


def parse_collapsed(text: str) -> Profile:
    """A profile of py-spy's raw (collapsed) output."""
    profile = Profile()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [Frame.parse(part) for part in stack.split(";") if part]
        # With --threads the root frame names the thread; it is not code.
        frames = [f for f in frames if f.file or not f.function.startswith("thread ")]
        profile.add_stack(frames, int(count))
    return profile


def py_spy() -> str:
    """py-spy beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: pip install -e '.[dev]'")
    return found


@dataclass
class Recording:
    """``py-spy record`` of one process, running until ``stop``."""

    process: subprocess.Popen[bytes]
    output: Path
    log: Path

    @classmethod
    def start(cls, pid: int, work_dir: Path, name: str) -> Recording:
        work_dir.mkdir(parents=True, exist_ok=True)
        output, log = work_dir / f"{name}.collapsed", work_dir / f"{name}.py-spy.log"
        argv = [
            py_spy(),
            "record",
            *("--pid", str(pid)),
            *("--format", "raw"),
            *("--output", str(output)),
            *("--rate", str(SAMPLE_RATE)),
            # Sampling without pausing the worker: it must not slow the burst it measures.
            "--nonblocking",
            # Only the thread holding the GIL: what runs Python code, which one core bounds.
            # (Without it, threads blocked in epoll or a queue show as busy.)
            "--gil",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        return cls(process, output, log)

    def stop(self) -> Profile:
        """Stop sampling and read what py-spy wrote (an empty profile if it wrote nothing)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not self.output.exists():
            tail = self.log.read_text(errors="replace")[-2000:]
            print(f"  py-spy wrote no profile; its log:\n{tail}", flush=True)
            return Profile()
        return parse_collapsed(self.output.read_text(errors="replace"))


def print_profile(title: str, profile: Profile, top: int = 15) -> None:
    print(f"{title} ({profile.samples} samples at {SAMPLE_RATE}/s)")
    print(
        "  by area of the innermost frame with an area (own; stdlib helpers count for the caller):"
    )
    for area, share in profile.shares(profile.area_own, len(AREAS) + 1):
        print(f"    {share:6.1%}  {area}")
    print("  by area anywhere on the stack (total; areas overlap):")
    for area, share in profile.shares(profile.area_total, len(AREAS) + 1):
        print(f"    {share:6.1%}  {area}")
    print("  functions by own samples:")
    for label, share in profile.shares(profile.own, top):
        print(f"    {share:6.1%}  {label}")
    print("  functions by total samples (event loop, threads and entry points left out):")
    for label, share in profile.shares(profile.total, top):
        print(f"    {share:6.1%}  {label}")


def profile_figures(profile: Profile, top: int = 10) -> dict[str, object]:
    """The JSON line's part: shares by area (own, total) and the top functions."""

    def rounded(pairs: list[tuple[str, float]]) -> dict[str, float]:
        return {k: round(v, 4) for k, v in pairs}

    return {
        "samples": profile.samples,
        "area_own": rounded(profile.shares(profile.area_own, len(AREAS) + 1)),
        "area_total": rounded(profile.shares(profile.area_total, len(AREAS) + 1)),
        "top_own": rounded(profile.shares(profile.own, top)),
        "top_total": rounded(profile.shares(profile.total, top)),
    }
