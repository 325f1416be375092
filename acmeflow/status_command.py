"""``acmeflow status certificate NAME [-n NS]``: one screen about one Certificate.

Its conditions, the certificate in its Secret, the current Order and its Challenges, and
the workflows behind them with a link into the Temporal UI, as ``cmctl status
certificate`` shows a cert-manager Certificate. It only reads.
"""

from __future__ import annotations

import argparse
import asyncio

from acmeflow.certificate_status import gather_from_cluster, gather_from_temporal
from acmeflow.certificate_status_view import render
from acmeflow.operator_access import (
    OperatorError,
    add_operator_flags,
    default_namespace,
    load_operator_settings,
    read_cluster,
    refused,
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = subparsers.add_parser("status", help="show what acmeflow knows about a resource")
    kinds = status.add_subparsers(dest="status_kind", required=True)
    certificate = kinds.add_parser(
        "certificate",
        help="a Certificate: conditions, Secret, current Order and Challenges, workflows",
    )
    certificate.add_argument("name", help="the Certificate's name")
    add_operator_flags(certificate)
    certificate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_operator_settings(args)
    namespace = args.namespace or default_namespace(settings.kubeconfig)
    try:
        report = read_cluster(
            settings, lambda reader: gather_from_cluster(reader, namespace, args.name)
        )
    except OperatorError as error:
        return refused(error)
    asyncio.run(gather_from_temporal(report, settings))
    print(render(report, settings))
    return 0
