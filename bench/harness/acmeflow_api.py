"""Every name of acmeflow the benchmarks use, imported here and nowhere else in ``bench/``.

A module of acmeflow that moves is re-pointed in this one file.
"""

from __future__ import annotations

from acmeflow.activities.certificate_steps import CERTIFICATE_LABEL
from acmeflow.activities.csr import build_csr, generate_private_key, load_private_key
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.issuer import Http01Ingress, IssuerConfig, SolverConfig
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.secrets import SecretRef
from acmeflow.contracts.states import FINAL_ORDER_STATES, OrderState
from acmeflow.crds import models as crds
from acmeflow.crds.cert_manager import CERT_MANAGER_API_VERSION, CertManagerIssuerRef
from acmeflow.devstack.cert_manager import (
    ACME_ISSUER_CONTROLLERS,
    CertManagerInfo,
    start_cert_manager,
)
from acmeflow.devstack.components import component_processes
from acmeflow.devstack.processes import ServerProcess, free_port, log_tail, stop_pid_file
from acmeflow.devstack.stack import DevStack, StackInfo
from acmeflow.devstack.temporal_server import temporal_process
from acmeflow.devstack.tls import create_ca
from acmeflow.worker.sandbox import workflow_runner
from acmeflow.workflows.order import OrderInput, OrderWorkflow
from acmeflow.workflows.resource_ids import workflow_id

__all__ = [
    "ACME_ISSUER_CONTROLLERS",
    "CERTIFICATE_LABEL",
    "CERT_MANAGER_API_VERSION",
    "FINAL_ORDER_STATES",
    "ActivityName",
    "CertManagerInfo",
    "CertManagerIssuerRef",
    "DevStack",
    "Http01Ingress",
    "IssuerConfig",
    "OrderInput",
    "OrderState",
    "OrderWorkflow",
    "RequestedNames",
    "SecretRef",
    "ServerProcess",
    "SolverConfig",
    "StackInfo",
    "component_processes",
    "crds",
    "create_ca",
    "free_port",
    "load_private_key",
    "log_tail",
    "single_name_csr",
    "start_cert_manager",
    "stop_pid_file",
    "temporal_process",
    "workflow_id",
    "workflow_runner",
]


def single_name_csr(dns_name: str) -> str:
    """A PEM CSR for ``dns_name`` from a fresh ECDSA P-256 key (a millisecond of CPU)."""
    return build_csr(generate_private_key("ECDSA"), RequestedNames(dns_names=[dns_name]))
