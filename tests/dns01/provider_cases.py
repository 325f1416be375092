"""One description per DNS-01 provider path on the stack, so the cross-provider tests and the
benchmark hold every provider to the same promises without knowing any provider's details.

A case says how to reach its provider from an order (``SolverConfig``, credentials in files)
and from Kubernetes (the Issuer's solver block and the Secrets it names), how to list the TXT
values the provider itself holds for a name (BIND for RFC 2136 and the webhook, moto's API
for Route53, PowerDNS's API for lexicon), which secret values must never reach a history,
and how to break it (bad credentials, a zone it does not host, its API out of reach).

A provider whose pieces are not in the tree yet says what is missing (``missing``), and
the tests fail with that sentence: a provider never silently drops out of the proof.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import dns.message
import dns.query

from acmeflow.contracts.issuer import Rfc2136, Route53, SolverConfig
from acmeflow.contracts.secrets import SecretRef
from acmeflow.devstack.dns_webhook import DnsWebhookEndpoints
from acmeflow.devstack.moto import start_extra_moto
from acmeflow.devstack.processes import free_port, stop_pid_file
from acmeflow.devstack.stack import StackInfo
from tests.dns01.powerdns_stack import lexicon_powerdns_solver, powerdns_of
from tests.dns01.route53_stack import Route53Zone, hosted_zone_id, route53_client
from tests.dns01.webhook_stack import TSIG_SECRET, webhook_config, webhook_solver
from tests.k8s.kube_helpers import Kubectl
from tests.orders.history_search import Secret, text_secret


class Fault(StrEnum):
    """The ways a provider is broken in tests/dns01/test_provider_failures.py."""

    BAD_CREDENTIALS = "bad-credentials"
    MISSING_ZONE = "missing-zone"
    UNREACHABLE = "unreachable-api"


def unique_label(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def challenge_record(name: str) -> str:
    """Where a name's DNS-01 value lives (a wildcard shares its apex's record)."""
    return f"_acme-challenge.{name.removeprefix('*.').rstrip('.')}."


def query_txt(server: str, record: str) -> list[str]:
    """TXT values ``server`` (host:port) answers for ``record``; none when it has none."""
    host, port = server.rsplit(":", 1)
    answer = dns.query.udp(dns.message.make_query(record, "TXT"), host, port=int(port), timeout=5)
    return sorted(b"".join(r.strings).decode() for rrset in answer.answer for r in rrset)


def secret_manifest(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


@dataclass
class Credentials:
    """Where a case keeps what an order-level solver names: secret files, and Kubernetes
    Secrets in ``namespace`` for a provider that reads its own (the webhook)."""

    directory: Path
    kubectl: Kubectl | None = None
    namespace: str = ""

    def kubernetes_secret(self, manifest: dict[str, Any]) -> None:
        assert self.kubectl is not None, "this provider needs a Kubernetes namespace"
        self.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))

    def file(self, name: str, value: str) -> SecretRef:
        path = self.directory / f"{name}-{uuid.uuid4().hex[:6]}"
        path.write_text(value)
        return SecretRef(path=str(path))


@dataclass(frozen=True)
class ProviderCase(ABC):
    """One provider path. ``name`` is the test id and the Kubernetes Issuer's name."""

    name: ClassVar[str]
    zone: ClassVar[str]
    """The zone its test names live in."""
    foreign_zone: ClassVar[str]
    """A zone DNS knows (its SOA is found) that this provider does not host."""
    said_as: ClassVar[str]
    """How a Challenge reason names the provider."""
    fixtures: ClassVar[tuple[str, ...]] = ()
    """Session fixtures the provider needs running (a mirror, a registration)."""

    def names(self, label: str) -> list[str]:
        """A wildcard and its apex, sharing one ``_acme-challenge`` name."""
        return [f"*.{label}.{self.zone}", f"{label}.{self.zone}"]

    @abstractmethod
    def solver(
        self, stack: StackInfo, credentials: Credentials, fault: Fault | None = None
    ) -> SolverConfig:
        """The order-level solver: its secrets in files, or in Kubernetes Secrets in
        ``credentials.namespace`` for a provider that reads them itself."""

    @abstractmethod
    def issuer_solver(
        self, stack: StackInfo, namespace: str, fault: Fault | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The Issuer's ``solvers[]`` entry and the Secrets it names, in ``namespace``."""

    @abstractmethod
    def txt_values(self, stack: StackInfo, record: str) -> list[str]:
        """TXT values the provider's own store holds at ``record`` (absolute name)."""

    @abstractmethod
    def secret_values(self, stack: StackInfo) -> list[Secret]:
        """Its credentials as the history search looks for them."""

    def worker_overrides(self, stack: StackInfo) -> dict[str, Any]:
        """WorkerConfig fields an in-process worker needs to reach this provider."""
        return {}

    def worker_args(self, stack: StackInfo) -> list[str]:
        """The same as ``acmeflow worker`` flags, for worker processes."""
        return []

    def fault_names(self, fault: Fault, label: str) -> list[str]:
        """The names an order broken by ``fault`` asks for."""
        zone = self.foreign_zone if fault is Fault.MISSING_ZONE else self.zone
        return [f"{label}.{zone}"]

    @contextmanager
    def fault_worker(self, stack: StackInfo, fault: Fault) -> Iterator[dict[str, Any]]:
        """Worker settings (beyond ``worker_overrides``) that break the provider, if the
        break is the worker's (an endpoint) rather than the solver's."""
        yield {}

    @abstractmethod
    def what_it_said(self, fault: Fault) -> tuple[str, ...]:
        """Words of what the provider said that the reason must carry (any one of them)."""


def _unreachable() -> str:
    """An address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


def _wrong_tsig() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _stack_tsig(stack: StackInfo) -> str:
    return stack.tsig_secret_path.read_text().strip()


# -- RFC 2136 into the stack's BIND9 ----------------------------------------------------


@dataclass(frozen=True)
class Rfc2136Case(ProviderCase):
    name: ClassVar[str] = "rfc2136"
    zone: ClassVar[str] = "example.com"
    foreign_zone: ClassVar[str] = "example.net"
    """BIND9 only forwards it (to PowerDNS): the update is refused."""
    said_as: ClassVar[str] = "rfc2136"

    def _server(self, stack: StackInfo, fault: Fault | None) -> str:
        return _unreachable() if fault is Fault.UNREACHABLE else stack.dns_address

    def _tsig(self, stack: StackInfo, fault: Fault | None) -> str:
        return _wrong_tsig() if fault is Fault.BAD_CREDENTIALS else _stack_tsig(stack)

    def solver(
        self, stack: StackInfo, credentials: Credentials, fault: Fault | None = None
    ) -> SolverConfig:
        return SolverConfig(
            dns01=Rfc2136(
                nameserver=self._server(stack, fault),
                tsig_key_name=stack.tsig_key_name,
                tsig_secret=credentials.file("tsig", self._tsig(stack, fault)),
                tsig_algorithm=stack.tsig_algorithm,
            )
        )

    def issuer_solver(
        self, stack: StackInfo, namespace: str, fault: Fault | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        solver = {
            "dns01": {
                "rfc2136": {
                    "nameserver": self._server(stack, fault),
                    "tsigKeyName": stack.tsig_key_name,
                    "tsigSecretSecretRef": {"name": f"{self.name}-tsig", "key": "secret"},
                    "tsigAlgorithm": "HMACSHA256",
                }
            }
        }
        secret = secret_manifest(
            namespace, f"{self.name}-tsig", {"secret": self._tsig(stack, fault)}
        )
        return solver, [secret]

    def txt_values(self, stack: StackInfo, record: str) -> list[str]:
        return query_txt(stack.dns_address, record)

    def secret_values(self, stack: StackInfo) -> list[Secret]:
        return [text_secret("TSIG secret", _stack_tsig(stack))]

    def what_it_said(self, fault: Fault) -> tuple[str, ...]:
        return {
            Fault.BAD_CREDENTIALS: ("BADSIG", "BADKEY", "NOTAUTH", "TSIG"),
            Fault.MISSING_ZONE: ("NOTAUTH", "NOTZONE", "REFUSED"),
            Fault.UNREACHABLE: ("timed out", "unreachable", "Timeout", "refused"),
        }[fault]


# -- cert-manager's webhook protocol, to acmeflow's own webhook (into BIND9) -------------


@dataclass(frozen=True)
class WebhookCase(ProviderCase):
    """The webhook reads its TSIG key from a Kubernetes Secret in the challenge's namespace,
    as real webhooks do, so even an order-level solver needs ``credentials.namespace``."""

    name: ClassVar[str] = "webhook"
    zone: ClassVar[str] = "example.com"
    foreign_zone: ClassVar[str] = "example.net"
    said_as: ClassVar[str] = "webhook"

    def _extra(self, fault: Fault | None) -> dict[str, str]:
        """What breaks the webhook's config: a nameserver where nothing listens."""
        return {"nameserver": _unreachable()} if fault is Fault.UNREACHABLE else {}

    def _tsig_secret(self, stack: StackInfo, namespace: str, fault: Fault | None) -> dict[str, Any]:
        tsig = _wrong_tsig() if fault is Fault.BAD_CREDENTIALS else _stack_tsig(stack)
        return secret_manifest(namespace, TSIG_SECRET, {"secret": tsig})

    def _endpoints(self, stack: StackInfo) -> DnsWebhookEndpoints:
        assert stack.dns_webhook is not None, "the stack runs no DNS webhook"
        return stack.dns_webhook

    def solver(
        self, stack: StackInfo, credentials: Credentials, fault: Fault | None = None
    ) -> SolverConfig:
        credentials.kubernetes_secret(self._tsig_secret(stack, credentials.namespace, fault))
        return webhook_solver(
            stack, self._endpoints(stack), credentials.namespace, **self._extra(fault)
        )

    def issuer_solver(
        self, stack: StackInfo, namespace: str, fault: Fault | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        endpoints = self._endpoints(stack)
        webhook = {
            "groupName": endpoints.group_name,
            "solverName": endpoints.solver_name,
            "config": webhook_config(stack, **self._extra(fault)),
        }
        return {"dns01": {"webhook": webhook}}, [self._tsig_secret(stack, namespace, fault)]

    def txt_values(self, stack: StackInfo, record: str) -> list[str]:
        return query_txt(stack.dns_address, record)

    def secret_values(self, stack: StackInfo) -> list[Secret]:
        return [text_secret("the webhook config's TSIG secret", _stack_tsig(stack))]

    def what_it_said(self, fault: Fault) -> tuple[str, ...]:
        return {
            Fault.BAD_CREDENTIALS: ("bad authentication", "BADSIG", "NOTAUTH"),
            # BIND9 answers NOTAUTH, signed with an error that miekg/dns reports so.
            Fault.MISSING_ZONE: ("bad authentication", "NOTAUTH"),
            Fault.UNREACHABLE: ("timeout", "refused", "i/o"),
        }[fault]


# -- Route53 in moto, mirrored into BIND9 so Pebble can resolve it -----------------------


AWS_ACCESS_KEY_ID = "AKIAPROOFSEXAMPLE000"
AWS_SECRET_ACCESS_KEY = "proofs/Route53+secret/access/key/000000"
"""The stack's moto accepts any key pair; this one is planted for the history search."""


@dataclass(frozen=True)
class Route53Case(ProviderCase):
    """The endpoint is the worker's (``route53_endpoint``), so a broken API or a moto
    that checks credentials is a worker setting (``fault_worker``)."""

    name: ClassVar[str] = "route53"
    zone: ClassVar[str] = "example.org"
    foreign_zone: ClassVar[str] = "example.com"
    said_as: ClassVar[str] = "route53"
    fixtures: ClassVar[tuple[str, ...]] = ("route53_mirror",)

    def solver(
        self, stack: StackInfo, credentials: Credentials, fault: Fault | None = None
    ) -> SolverConfig:
        return SolverConfig(
            route53=Route53(
                region="us-east-1",
                access_key_id=AWS_ACCESS_KEY_ID,
                secret_access_key=credentials.file("aws", AWS_SECRET_ACCESS_KEY),
            )
        )

    def issuer_solver(
        self, stack: StackInfo, namespace: str, fault: Fault | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        secret_name = f"{self.name}-aws"
        route53 = {
            "region": "us-east-1",
            "accessKeyID": AWS_ACCESS_KEY_ID,
            "secretAccessKeySecretRef": {"name": secret_name, "key": "secret-access-key"},
        }
        secret = secret_manifest(
            namespace, secret_name, {"secret-access-key": AWS_SECRET_ACCESS_KEY}
        )
        return {"dns01": {"route53": route53}}, [secret]

    def worker_overrides(self, stack: StackInfo) -> dict[str, Any]:
        return {"route53_endpoint": stack.moto_url}

    def worker_args(self, stack: StackInfo) -> list[str]:
        return ["--route53-endpoint", stack.moto_url]

    @contextmanager
    def fault_worker(self, stack: StackInfo, fault: Fault) -> Iterator[dict[str, Any]]:
        if fault is Fault.UNREACHABLE:
            yield {"route53_endpoint": f"http://{_unreachable()}"}
        elif fault is Fault.BAD_CREDENTIALS:
            # A moto that checks signatures from its first call knows no key at all.
            process, url = start_extra_moto(
                stack.state_dir, name=f"moto-proofs-{uuid.uuid4().hex[:6]}", auth_after=0
            )
            try:
                yield {"route53_endpoint": url}
            finally:
                stop_pid_file(process.pid_path)
        else:
            yield {}

    def txt_values(self, stack: StackInfo, record: str) -> list[str]:
        client = route53_client(stack.moto_url)
        return Route53Zone(stack.moto_url, hosted_zone_id(client)).txt(record)

    def secret_values(self, stack: StackInfo) -> list[Secret]:
        return [text_secret("AWS secret access key", AWS_SECRET_ACCESS_KEY)]

    def what_it_said(self, fault: Fault) -> tuple[str, ...]:
        return {
            Fault.BAD_CREDENTIALS: ("InvalidClientTokenId", "SignatureDoesNotMatch"),
            Fault.MISSING_ZONE: ("hosted zone",),
            Fault.UNREACHABLE: ("Could not connect", "unreachable", "onnect"),
        }[fault]


# -- dns-lexicon's powerdns provider, to the stack's PowerDNS ----------------------------


@dataclass(frozen=True)
class LexiconPowerDnsCase(ProviderCase):
    name: ClassVar[str] = "lexicon-powerdns"
    zone: ClassVar[str] = "example.net"
    foreign_zone: ClassVar[str] = "example.com"
    said_as: ClassVar[str] = "lexicon powerdns"

    def _api(self, stack: StackInfo, fault: Fault | None = None) -> str:
        return f"http://{_unreachable()}" if fault is Fault.UNREACHABLE else stack.powerdns_api_url

    def _key(self, stack: StackInfo, fault: Fault | None = None) -> str:
        if fault is Fault.BAD_CREDENTIALS:
            return secrets.token_hex(16)
        return powerdns_of(stack).api_key

    def solver(
        self, stack: StackInfo, credentials: Credentials, fault: Fault | None = None
    ) -> SolverConfig:
        return lexicon_powerdns_solver(
            self._api(stack, fault), self._key(stack, fault), credentials.directory
        )

    def issuer_solver(
        self, stack: StackInfo, namespace: str, fault: Fault | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        secret_name = f"{self.name}-credentials"
        lexicon = {
            "provider": "powerdns",
            "credentialsSecretRef": {"name": secret_name},
            "options": {"pdns_server": self._api(stack, fault)},
        }
        secret = secret_manifest(namespace, secret_name, {"auth_token": self._key(stack, fault)})
        return {"dns01": {"lexicon": lexicon}}, [secret]

    def txt_values(self, stack: StackInfo, record: str) -> list[str]:
        return powerdns_of(stack).api_txt(record)

    def secret_values(self, stack: StackInfo) -> list[Secret]:
        return [text_secret("PowerDNS API key", self._key(stack))]

    def what_it_said(self, fault: Fault) -> tuple[str, ...]:
        return {
            Fault.BAD_CREDENTIALS: ("401", "Unauthorized", "Forbidden"),
            Fault.MISSING_ZONE: ("404", "422", "Not Found", "not found", "Could not find"),
            Fault.UNREACHABLE: ("Connection refused", "onnect", "unreachable"),
        }[fault]


CASES: tuple[ProviderCase, ...] = (
    Rfc2136Case(),
    WebhookCase(),
    Route53Case(),
    LexiconPowerDnsCase(),
)
BY_NAME = {case.name: case for case in CASES}
