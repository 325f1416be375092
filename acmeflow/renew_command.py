"""``acmeflow renew NAME... | --all [-n NS | -A]``: reissue Certificates now.

The Certificate's workflow gets its ``renew`` signal: it issues past the renewal time and
any back-off, with a new key where the rotation policy asks for one, and replaces the
Secret in place when the new certificate is there. Nothing is deleted, so the old
certificate serves until then. The Certificate shows ``Issuing`` True with reason
``ManuallyTriggered``, as ``cmctl renew`` makes a cert-manager Certificate show it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from acmeflow.contracts.progress import ConditionStatus
from acmeflow.crds import models as crd
from acmeflow.operator_access import (
    ClusterReader,
    OperatorError,
    OperatorSettings,
    add_operator_flags,
    connect_temporal,
    default_namespace,
    load_operator_settings,
    read_cluster,
    refused,
)
from acmeflow.workflows.certificate import CertificateWorkflow
from acmeflow.workflows.resource_ids import workflow_id

WHY = "Certificate re-issuance manually triggered"
"""The Issuing condition's message, as cert-manager words it for ``cmctl renew``."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "renew", help="reissue Certificates now, through their workflows (deletes nothing)"
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="Certificates to renew")
    parser.add_argument("--all", action="store_true", help="every Certificate in the namespace")
    parser.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="with --all: every Certificate in every namespace",
    )
    add_operator_flags(parser)
    parser.set_defaults(run=run)


def _targets(
    args: argparse.Namespace, reader: ClusterReader, namespace: str
) -> list[crd.Certificate]:
    if args.all:
        if args.names:
            raise OperatorError("name Certificates or pass --all, not both")
        if args.all_namespaces:
            return reader.objects(crd.Certificate, None)
        reader.require_namespace(namespace)
        return reader.objects(crd.Certificate, namespace)
    if args.all_namespaces:
        raise OperatorError("--all-namespaces goes with --all")
    if not args.names:
        raise OperatorError("name at least one Certificate, or pass --all")
    return [reader.get(crd.Certificate, namespace, name) for name in args.names]


def _issuing(certificate: crd.Certificate) -> crd.Condition | None:
    for condition in (certificate.status.conditions if certificate.status else None) or []:
        if condition.type == "Issuing" and condition.status == ConditionStatus.TRUE:
            return condition
    return None


async def _renew(temporal: Client, certificate: crd.Certificate) -> bool:
    """Signal one Certificate's workflow; True when the signal was delivered (or not needed)."""
    namespace, name = certificate.metadata.namespace or "", certificate.metadata.name
    issuing = _issuing(certificate)
    if issuing is not None:
        print(
            f"Certificate {namespace}/{name} is being issued already "
            f"(Issuing: {issuing.reason}); not triggered again"
        )
        return True
    id_ = workflow_id(crd.Certificate.KIND, namespace, name)
    try:
        await temporal.get_workflow_handle(id_).signal(CertificateWorkflow.renew, WHY)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            print(
                f"error: Certificate {namespace}/{name} has no running workflow {id_} "
                "(is the acmeflow bridge running?)",
                file=sys.stderr,
            )
        else:
            print(f"error: failed to signal {id_}: {error.message}", file=sys.stderr)
        return False
    print(f"Manually triggered issuance of Certificate {namespace}/{name}")
    return True


async def _renew_all(certificates: list[crd.Certificate], settings: OperatorSettings) -> int:
    try:
        temporal = await connect_temporal(settings)
    except OperatorError as error:
        return refused(error)
    delivered = [await _renew(temporal, certificate) for certificate in certificates]
    return 0 if all(delivered) else 1


def run(args: argparse.Namespace) -> int:
    settings = load_operator_settings(args)
    namespace = args.namespace or default_namespace(settings.kubeconfig)
    try:
        certificates = read_cluster(settings, lambda reader: _targets(args, reader, namespace))
    except OperatorError as error:
        return refused(error)
    if not certificates:
        where = "any namespace" if args.all_namespaces else f'namespace "{namespace}"'
        print(f"No Certificates found in {where}")
        return 0
    return asyncio.run(_renew_all(certificates, settings))
