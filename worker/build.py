"""Assemble a worker: every workflow, every activity class built once with its clients."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from acmeflow.activities.acme_account import AcmeAccountActivities
from acmeflow.activities.acme_client import AcmeClients
from acmeflow.activities.acme_order import AcmeOrderActivities
from acmeflow.activities.dns01 import Dns01Activities, Rfc2136Publisher
from acmeflow.activities.dns01_lexicon import LexiconPublisher
from acmeflow.activities.dns01_publishers import Dns01Publishers
from acmeflow.activities.dns01_route53 import Route53Publisher
from acmeflow.activities.errors import bad_request
from acmeflow.activities.http01 import DirectoryStore, Http01Activities, Http01Publisher
from acmeflow.activities.renewal_info import RenewalInfoActivities
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.activities.self_check_settings import SelfCheckSettings
from acmeflow.contracts.challenge import ChallengeSpec
from acmeflow.plumbing.activity_methods import activity_methods
from acmeflow.plumbing.order_observer import LoggingObserver, ObserverActivities, OrderObserver
from acmeflow.worker.config import WorkerConfig
from acmeflow.worker.kubernetes import KubernetesServices, kubernetes_services
from acmeflow.worker.sandbox import workflow_runner
from acmeflow.workflows.certificate import CertificateWorkflow
from acmeflow.workflows.issuer_account import IssuerAccountWorkflow
from acmeflow.workflows.order import OrderWorkflow

WORKFLOWS: list[type] = [OrderWorkflow, CertificateWorkflow, IssuerAccountWorkflow]


class NoHttp01Store:
    """Refuses HTTP-01 with a reason when this worker was given nowhere to publish tokens."""

    def publish(self, spec: ChallengeSpec) -> None:
        raise bad_request(
            "this worker has no HTTP-01 store: start it with --http01-store-dir "
            "(or --kubernetes true inside a cluster)"
        )

    def withdraw(self, spec: ChallengeSpec) -> None:
        return None


def self_check_settings(config: WorkerConfig) -> SelfCheckSettings:
    return SelfCheckSettings(
        resolver=config.self_check_resolver,
        http01_port=config.self_check_http01_port,
        dns_authoritative_port=config.self_check_dns_port,
        nameservers=config.self_check_nameservers,
    )


def dns01_publishers(
    config: WorkerConfig, secrets: SecretStore, kubernetes: KubernetesServices | None
) -> Dns01Publishers:
    """Every DNS-01 provider this worker drives; each reads its credentials per call."""
    return Dns01Publishers(
        rfc2136=Rfc2136Publisher(secrets, kubernetes.copies if kubernetes else None),
        webhook=kubernetes.dns01_webhook if kubernetes else None,
        route53=Route53Publisher(
            secrets, kubernetes.copies if kubernetes else None, endpoint_url=config.route53_endpoint
        ),
        lexicon=LexiconPublisher(
            secrets,
            whole_secrets=kubernetes.secrets if kubernetes else None,
            copies=kubernetes.copies if kubernetes else None,
        ),
    )


def http01_publisher(
    store_dir: Path | None, kubernetes: Http01Publisher | None = None
) -> Http01Publisher:
    """A configured store directory wins; else the cluster's routing, if any."""
    if store_dir:
        return DirectoryStore(store_dir)
    return kubernetes or NoHttp01Store()


def activity_instances(
    config: WorkerConfig,
    *,
    secrets: SecretStore | None = None,
    observer: OrderObserver | None = None,
    http01: Http01Publisher | None = None,
    dns01: Dns01Activities | None = None,
    kubernetes: KubernetesServices | None = None,
) -> list[object]:
    """Every activity class the worker serves, each built once with its clients."""
    secrets = secrets or SecretStore(kubernetes=kubernetes.secrets if kubernetes else None)
    http01 = http01 or http01_publisher(
        config.http01_store_dir, kubernetes.http01 if kubernetes else None
    )
    settings = self_check_settings(config)
    clients = AcmeClients(secrets, pool_size=config.max_concurrent_activities)
    orders = AcmeOrderActivities(clients, secrets)
    return [
        orders,
        AcmeAccountActivities(clients, orders),
        RenewalInfoActivities(clients, recheck_max_s=config.renewal_info_recheck_max_s),
        Http01Activities(http01, settings),
        dns01 or Dns01Activities(dns01_publishers(config, secrets, kubernetes), settings),
        ObserverActivities(observer or LoggingObserver()),
        *([kubernetes.certificates, kubernetes.order_history] if kubernetes else []),
    ]


def build_worker(
    client: Client,
    config: WorkerConfig,
    *,
    secrets: SecretStore | None = None,
    observer: OrderObserver | None = None,
    http01: Http01Publisher | None = None,
    dns01: Dns01Activities | None = None,
    extra_activities: Sequence[object] = (),
    kubernetes: KubernetesServices | None = None,
) -> Worker:
    """The worker; with ``config.kubernetes`` (or ``kubernetes`` given) it uses the cluster."""
    if kubernetes is None and config.kubernetes:
        kubernetes = kubernetes_services(config)
    instances = activity_instances(
        config,
        secrets=secrets,
        observer=observer,
        http01=http01,
        dns01=dns01,
        kubernetes=kubernetes,
    )
    return Worker(
        client,
        task_queue=config.task_queue,
        workflows=WORKFLOWS,
        activities=activity_methods(*instances, *extra_activities),
        activity_executor=ThreadPoolExecutor(max_workers=config.max_concurrent_activities),
        max_concurrent_activities=config.max_concurrent_activities,
        max_concurrent_workflow_tasks=config.max_concurrent_workflow_tasks,
        max_cached_workflows=config.max_cached_workflows,
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=timedelta(seconds=config.graceful_shutdown_s),
    )
