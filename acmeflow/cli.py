"""The ``acmeflow`` command: one entry point, one subcommand per component."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from acmeflow import convert_issuer, issue_command, renew_command, status_command
from acmeflow.devstack import commands as dev_commands
from acmeflow.k8s_bridge import command as bridge_command
from acmeflow.solver import command as solver_command
from acmeflow.worker import command as worker_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acmeflow",
        description="Kubernetes ACME issuer in which every ACME Order is a Temporal workflow.",
    )
    parser.add_argument("--log-level", default="INFO", help="Python log level (default INFO)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    dev_commands.add_parser(subparsers)
    solver_command.add_parser(subparsers)
    worker_command.add_parser(subparsers)
    issue_command.add_parser(subparsers)
    status_command.add_parser(subparsers)
    renew_command.add_parser(subparsers)
    bridge_command.add_parser(subparsers)
    convert_issuer.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
