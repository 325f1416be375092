"""``acmeflow convert-issuer``: cert-manager Issuers and ClusterIssuers in, acmeflow's out.

acmeflow's ``spec.acme`` is cert-manager's ACME issuer spelled the same way, so converting is
mostly copying. What acmeflow lacks is declared in its models as a ``Refusal``; the walk
below reads those, so it leaves out exactly what admission would refuse and says why in the
same words. A field the models do not know at all is left out too, and said: nothing is
lost silently. A refusal that leaves a solver unable to work (a DNS provider acmeflow lacks,
a credential acmeflow cannot use), or a ``Requirement`` the block misses (cloudDNS without a
service account key), drops that solver rather than change what it does.

    kubectl get issuers.cert-manager.io -A -o yaml | acmeflow convert-issuer | kubectl apply -f -
"""

from __future__ import annotations

import argparse
import copy
import sys
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import pydantic
import yaml

from acmeflow.crds.models import (
    API_VERSION,
    ClusterIssuer,
    CrdModel,
    Issuer,
    IssuerSpec,
    Refusal,
    TsigAlgorithm,
    wire_name,
)

CERT_MANAGER_API_VERSION = "cert-manager.io/v1"
CERT_MANAGER_TSIG_DEFAULT = TsigAlgorithm.HMACMD5
"""What cert-manager signs with when ``tsigAlgorithm`` is empty; acmeflow's empty is HMACSHA256."""
CERT_MANAGER_EAB_ALGORITHM = "HS256"
"""What cert-manager signs External Account Bindings with, whatever ``keyAlgorithm`` says."""
CLOUD_DNS_NOTE = (
    "acmeflow reaches Cloud DNS through dns-lexicon, which works in the service account's own "
    "project (project_id in its key, so project must be that one) and picks the public managed "
    "zone by DNS name (hostedZoneName is kept but not used)"
)
KEPT_METADATA = ("name", "namespace", "labels", "annotations")
"""What a person wrote; the rest of metadata (uid, resourceVersion, ...) is the server's."""
SERVER_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)

_KINDS: dict[str, type[Issuer] | type[ClusterIssuer]] = {
    "Issuer": Issuer,
    "ClusterIssuer": ClusterIssuer,
}


@dataclass(frozen=True)
class Remark:
    """What a person must know about one field: carried not at all (a loss) or differently."""

    path: str
    """Where, as kubectl names it: ``spec.acme.solvers[1].dns01.route53``."""
    why: str


@dataclass
class Conversion:
    """One input document: its acmeflow equivalent (None when nothing carried) and its losses."""

    source: str
    """``Issuer team-a/letsencrypt``, how every line about this document starts."""
    converted: dict[str, Any] | None = None
    losses: list[Remark] = field(default_factory=list)
    """What the acmeflow equivalent does not carry."""
    notes: list[Remark] = field(default_factory=list)
    """Carried, but differently spelled or placed: what a person should know."""

    def report(self) -> list[str]:
        """The stderr lines: one per loss, then one per note."""
        lines = [f"{self.source}: {loss.path}: {loss.why}" for loss in self.losses]
        return lines + [f"{self.source}: {note.path}: note: {note.why}" for note in self.notes]


class _SolverUnusable(Exception):
    """A refusal with ``drops_solver`` met inside a solver: the whole solver is left out."""

    def __init__(self, loss: Remark) -> None:
        super().__init__(loss.why)
        self.loss = loss


def _source(document: Mapping[str, Any]) -> str:
    metadata = document.get("metadata") or {}
    name = metadata.get("name", "<unnamed>")
    namespace = metadata.get("namespace")
    kind = document.get("kind") or "<no kind>"
    return (
        f"{kind} {namespace}/{name}" if namespace and kind != "ClusterIssuer" else f"{kind} {name}"
    )


def _model_in(annotation: Any) -> tuple[type[CrdModel] | None, bool]:
    """The model a field holds, and whether it holds a list of them (``X | None`` unwrapped)."""
    if isinstance(annotation, type) and issubclass(annotation, CrdModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is list and arguments:
        model, _ = _model_in(arguments[0])
        return model, True
    if origin in (typing.Union, types.UnionType):
        for argument in arguments:
            model, many = _model_in(argument)
            if model is not None:
                return model, many
    if origin is typing.Annotated:
        return _model_in(arguments[0])
    return None, False


def carry(
    model: type[CrdModel], written: Mapping[str, Any], path: str, losses: list[Remark]
) -> dict[str, Any]:
    """The part of ``written`` that ``model`` admits, in the order written; the rest to losses.

    Raises ``_SolverUnusable`` when a refusal says its solver cannot work without the field,
    or a requirement of ``model`` is missed; the list of solvers catches it and leaves that
    solver out.
    """

    fields = {wire_name(name): info for name, info in model.model_fields.items()}
    refusals: dict[str, Refusal] = {refusal.field: refusal for refusal in model.REFUSED}
    carried: dict[str, Any] = {}
    for key, value in written.items():
        where = f"{path}.{key}"
        refusal = refusals.get(key)
        if key not in fields:
            losses.append(Remark(where, "not a field acmeflow knows; left out"))
            continue
        if refusal is not None and refusal.refuses(value):
            loss = Remark(where, refusal.message)
            if refusal.drops_solver:
                raise _SolverUnusable(loss)
            losses.append(loss)
            continue
        part, many = _model_in(fields[key].annotation)
        if part is not None and many and isinstance(value, list):
            carried[key] = _carry_list(part, value, where, losses)
        elif part is not None and isinstance(value, Mapping):
            carried[key] = carry(part, value, where, losses)
        else:
            carried[key] = copy.deepcopy(value)
    for needed in model.REQUIRED:
        if needed.missing(written):
            raise _SolverUnusable(Remark(path, needed.message))
    return carried


def _carry_list(
    model: type[CrdModel], written: list[Any], path: str, losses: list[Remark]
) -> list[Any]:
    kept = []
    for index, entry in enumerate(written):
        where = f"{path}[{index}]"
        if not isinstance(entry, Mapping):
            kept.append(entry)
            continue
        try:
            kept.append(carry(model, entry, where, losses))
        except _SolverUnusable as unusable:
            losses.append(
                Remark(where, f"solver left out, its names go to the other solvers: {unusable}")
            )
    return kept


def _as_cert_manager_means_it(acme: Mapping[str, Any], notes: list[Remark]) -> dict[str, Any]:
    """``acme`` with what cert-manager does implicitly written out, so acmeflow does the same.

    cert-manager signs RFC 2136 updates with HMACMD5 when ``tsigAlgorithm`` is empty, and
    External Account Bindings with HS256 whatever ``keyAlgorithm`` says.
    """
    written: dict[str, Any] = copy.deepcopy(dict(acme))
    _sign_bindings_as_cert_manager_does(written, notes)
    for index, solver in enumerate(written.get("solvers") or []):
        if isinstance(((solver or {}).get("dns01") or {}).get("cloudDNS"), dict):
            notes.append(Remark(f"spec.acme.solvers[{index}].dns01.cloudDNS", CLOUD_DNS_NOTE))
        rfc2136 = ((solver or {}).get("dns01") or {}).get("rfc2136")
        if (
            isinstance(rfc2136, dict)
            and rfc2136.get("tsigKeyName")
            and not rfc2136.get("tsigAlgorithm")
        ):
            rfc2136["tsigAlgorithm"] = str(CERT_MANAGER_TSIG_DEFAULT)
            notes.append(
                Remark(
                    f"spec.acme.solvers[{index}].dns01.rfc2136.tsigAlgorithm",
                    f"written out as {CERT_MANAGER_TSIG_DEFAULT}, cert-manager's default "
                    "(acmeflow's empty means HMACSHA256)",
                )
            )
    return written


def _sign_bindings_as_cert_manager_does(acme: dict[str, Any], notes: list[Remark]) -> None:
    """cert-manager ignores ``keyAlgorithm`` and signs with HS256; acmeflow honours the field."""
    binding = acme.get("externalAccountBinding")
    if not isinstance(binding, dict):
        return
    algorithm = binding.get("keyAlgorithm")
    if algorithm not in (None, CERT_MANAGER_EAB_ALGORITHM):
        binding["keyAlgorithm"] = CERT_MANAGER_EAB_ALGORITHM
        notes.append(
            Remark(
                "spec.acme.externalAccountBinding.keyAlgorithm",
                f"written as {CERT_MANAGER_EAB_ALGORITHM}: cert-manager signs every binding "
                f"with {CERT_MANAGER_EAB_ALGORITHM} whatever keyAlgorithm says ({algorithm}), "
                "acmeflow signs with what it says",
            )
        )


def _metadata(document: Mapping[str, Any], kind: str) -> dict[str, Any]:
    written = document.get("metadata") or {}
    metadata = {key: copy.deepcopy(written[key]) for key in KEPT_METADATA if key in written}
    if kind == "ClusterIssuer":
        metadata.pop("namespace", None)
    annotations = {
        key: value
        for key, value in (metadata.get("annotations") or {}).items()
        if key not in SERVER_ANNOTATIONS
    }
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return metadata


def convert(document: Mapping[str, Any]) -> Conversion:
    """The acmeflow equivalent of one cert-manager Issuer or ClusterIssuer document."""
    conversion = Conversion(_source(document))
    kind, api_version = str(document.get("kind")), document.get("apiVersion")
    resource = _KINDS.get(kind)
    if resource is None or api_version != CERT_MANAGER_API_VERSION:
        conversion.losses.append(
            Remark(
                "(document)",
                f"not a {CERT_MANAGER_API_VERSION} Issuer or ClusterIssuer "
                f"(apiVersion {api_version}, kind {kind}); skipped",
            )
        )
        return conversion
    spec = document.get("spec") or {}
    if not isinstance(spec.get("acme"), Mapping):
        other = [key for key in spec if key != "acme"] or ["nothing"]
        conversion.losses.append(
            Remark(
                f"spec.{other[0]}",
                "no spec.acme: acmeflow issues certificates only from ACME CAs; "
                "keep this issuer on cert-manager",
            )
        )
        return conversion
    written = {**spec, "acme": _as_cert_manager_means_it(spec["acme"], conversion.notes)}
    carried_spec = carry(IssuerSpec, written, "spec", conversion.losses)
    converted = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": _metadata(document, kind),
        "spec": carried_spec,
    }
    try:
        resource.model_validate(converted)
    except pydantic.ValidationError as error:
        conversion.losses.append(Remark("(document)", f"not admissible, skipped: {_first(error)}"))
        return conversion
    if written["acme"].get("solvers") and not carried_spec["acme"].get("solvers"):
        conversion.notes.append(
            Remark("spec.acme.solvers", "no solver left: the issuer registers but cannot issue")
        )
    if kind == "ClusterIssuer":
        conversion.notes.append(
            Remark(
                "spec.acme",
                "acmeflow reads a ClusterIssuer's Secrets from its own cluster resource "
                "namespace (the bridge's --cluster-resource-namespace, acmeflow by default), "
                "cert-manager from its own (cert-manager by default): copy the Secrets there, "
                "or run the bridge with --cluster-resource-namespace cert-manager",
            )
        )
    conversion.converted = converted
    return conversion


def _first(error: pydantic.ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}"


def documents_in(stream: Iterable[Any]) -> Iterator[Mapping[str, Any]]:
    """Every object of a YAML stream, with ``kind: List`` (``kubectl get -o yaml``) unrolled."""
    for document in stream:
        if not isinstance(document, Mapping):
            continue
        if document.get("kind") == "List" and isinstance(document.get("items"), list):
            yield from (item for item in document["items"] if isinstance(item, Mapping))
        else:
            yield document


def convert_stream(text: str) -> list[Conversion]:
    """Every document of ``text``, converted."""
    return [convert(document) for document in documents_in(yaml.safe_load_all(text))]


def run_filter(stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Read, convert, write; non-zero only when nothing could be converted."""
    try:
        conversions = convert_stream(stdin.read())
    except yaml.YAMLError as error:
        print(f"acmeflow convert-issuer: the input is not YAML: {error}", file=stderr)
        return 2
    converted = [c.converted for c in conversions if c.converted is not None]
    if converted:
        yaml.safe_dump_all(converted, stdout, sort_keys=False, width=100)
    for conversion in conversions:
        for line in conversion.report():
            print(line, file=stderr)
    if not converted:
        print(
            "acmeflow convert-issuer: nothing converted: give cert-manager.io/v1 Issuer or "
            "ClusterIssuer YAML with spec.acme on stdin",
            file=stderr,
        )
        return 1
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "convert-issuer",
        help="cert-manager Issuer/ClusterIssuer YAML on stdin to acmeflow's on stdout",
        description=(
            "Reads cert-manager.io/v1 Issuers and ClusterIssuers (YAML, several documents or "
            "a kubectl List) on stdin and writes their acmeflow.io equivalents on stdout. "
            "Each thing that cannot be carried over gets one line on stderr: where, and why. "
            "Exits non-zero only when nothing could be converted."
        ),
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_filter(sys.stdin, sys.stdout, sys.stderr)
