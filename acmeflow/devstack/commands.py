"""``acmeflow dev``: bring the embedded stack up, show it, export it, take it down."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path

from acmeflow.devstack.processes import pid_alive
from acmeflow.devstack.stack import MANIFEST, TEMPORAL_MODES, DevStack, default_state_dir


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = subparsers.add_parser("dev", help="run the embedded development stack")
    dev.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where data, logs and stack.json live (default: $ACMEFLOW_STATE_DIR "
        "or ~/.local/state/acmeflow/dev)",
    )
    actions = dev.add_subparsers(dest="dev_command", required=True)
    up = actions.add_parser("up", help="start every server and wait until all answer")
    up.add_argument(
        "--detach", action="store_true", help="return once healthy and leave the servers running"
    )
    up.add_argument(
        "--servers-only",
        action="store_true",
        help="do not run acmeflow's own worker and bridge (tests run their own)",
    )
    up.add_argument(
        "--with-cert-manager",
        action="store_true",
        help="also run cert-manager's controllers (its CRDs installed) and let the bridge "
        "sign their CertificateRequests (--external-issuer true)",
    )
    up.add_argument(
        "--temporal",
        choices=TEMPORAL_MODES,
        default="dev",
        help="dev: Temporal's dev server with its UI (default); cluster: frontend, history, "
        "matching and worker as separate temporal-server processes over PostgreSQL",
    )
    actions.add_parser("status", help="one line per server: address and health")
    actions.add_parser("env", help="print export lines for the running stack")
    actions.add_parser("down", help="stop every server the stack started")
    dev.set_defaults(run=run)


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir) if args.state_dir else default_state_dir()


def _require_manifest(state_dir: Path) -> None:
    if not (state_dir / MANIFEST).exists():
        raise SystemExit(f"no stack in {state_dir}: run `acmeflow dev up --detach` first")


def print_status(stack: DevStack) -> bool:
    rows = [("SERVER", "ADDRESS", "HEALTHY")]
    all_healthy = True
    for server, address in stack.addresses():
        pid_text = server.pid_path.read_text().strip() if server.pid_path.exists() else ""
        healthy: bool = bool(pid_text) and pid_alive(int(pid_text))
        if healthy:
            try:
                healthy = server.healthy()
            except Exception:  # noqa: BLE001 - a failing probe is the answer "no"
                healthy = False
        all_healthy = all_healthy and healthy
        rows.append((server.name, address, "yes" if healthy else "no"))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, address, answer in rows:
        print(f"{name:<{widths[0]}}  {address:<{widths[1]}}  {answer}")
    return all_healthy


def run(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    if args.dev_command == "up":
        return _up(
            state_dir,
            detach=args.detach,
            with_acmeflow=not args.servers_only,
            with_cert_manager=args.with_cert_manager,
            temporal=args.temporal,
        )
    _require_manifest(state_dir)
    stack = DevStack.existing(state_dir)
    if args.dev_command == "status":
        return 0 if print_status(stack) else 1
    if args.dev_command == "env":
        for name, value in stack.info.env().items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    stopped = stack.down()
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def _up(
    state_dir: Path, *, detach: bool, with_acmeflow: bool, with_cert_manager: bool, temporal: str
) -> int:
    if (state_dir / MANIFEST).exists():
        DevStack.existing(state_dir).down()
    stack = DevStack.create(
        state_dir,
        with_acmeflow=with_acmeflow,
        with_cert_manager=with_cert_manager,
        temporal=temporal,
    )
    started = time.monotonic()
    try:
        stack.up()
    except RuntimeError as failure:  # ServerFailed, a failed build or kubectl apply
        print(f"acmeflow dev up failed: {failure}", file=sys.stderr)
        return 1
    print(f"stack healthy in {time.monotonic() - started:.1f}s; state in {state_dir}")
    print_status(stack)
    print(
        f"\nTemporal UI: {stack.info.temporal_ui_url or 'none (a cluster has no UI here)'}\n"
        f'Use it from a shell: eval "$(acmeflow dev env)"'
    )
    if detach:
        return 0
    print("running; Ctrl-C stops every server")
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    stack.down()
    return 0
