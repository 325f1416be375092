"""What a Certificate's TLS Secret holds, the way cert-manager fills its own.

data::

    tls.crt            the chain the CA returned, leaf first
    tls.key            the private key, in the Certificate's ``privateKey.encoding``
    ca.crt             the root, only where the chain itself ends in one (self-signed);
                       ACME returns leaf and intermediates, so usually it is left out,
                       as cert-manager's ACME issuer leaves it out
    tls-combined.pem   additionalOutputFormats CombinedPEM: the key, then the chain
    key.der            additionalOutputFormats DER: tls.key without its PEM armour

annotations: the Certificate's ``secretTemplate`` ones, then what the issued certificate
says (``acmeflow.io/common-name``, ``alt-names``, ``ip-sans``, ``uri-sans``, and
``email-sans`` when it has any: cert-manager's set, comma-separated as CSV), then the
Certificate's and issuer's names, kind and group. Labels: the template's, then acmeflow's.
acmeflow's own keys are written last, so a template can never override them; a key an
earlier template wrote and the current one does not is removed (``stale_metadata``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from acmeflow.activities.csr import PrivateKey, private_key_der, private_key_pem
from acmeflow.activities.kubernetes_api import MANAGED_LABEL
from acmeflow.contracts.certificate import CERTIFICATE_ANNOTATION, TLS_SECRET_LABEL, StoreRequest

ANNOTATION_PREFIX = "acmeflow.io/"
ISSUER_ANNOTATION = f"{ANNOTATION_PREFIX}issuer-name"
ISSUER_KIND_ANNOTATION = f"{ANNOTATION_PREFIX}issuer-kind"
ISSUER_GROUP_ANNOTATION = f"{ANNOTATION_PREFIX}issuer-group"
TEMPLATE_KEYS_ANNOTATION = f"{ANNOTATION_PREFIX}secret-template-keys"
"""The label and annotation keys ``secretTemplate`` put on the Secret, as JSON, so that one
dropped from the template is removed: cert-manager's server-side apply removes them through
its field manager; a merge patch needs this record to tell them from a user's own."""
OUTPUT_FORMAT_KEYS = {"CombinedPEM": "tls-combined.pem", "DER": "key.der"}
"""The data key each ``additionalOutputFormats`` type writes (cert-manager's names)."""
CA_KEY = "ca.crt"
DATA_KEYS = ("tls.crt", "tls.key", CA_KEY, *OUTPUT_FORMAT_KEYS.values())
"""Every data key acmeflow writes; one it no longer writes is removed from the Secret."""


def certificate_label(certificate: str) -> str:
    """The Certificate's name as a label value (at most 63 characters, unique when cut);
    names may be 253 characters long, label values no more than 63."""
    if len(certificate) <= 63:
        return certificate
    return f"{certificate[:52]}-{hashlib.sha256(certificate.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class TlsSecretContents:
    data: dict[str, bytes]
    labels: dict[str, str]
    annotations: dict[str, str]


def _csv(values: list[str]) -> str:
    """One CSV record, as cert-manager joins a list into one annotation."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


def certificate_annotations(leaf: x509.Certificate) -> dict[str, str]:
    """What the issued certificate names, under acmeflow's prefix (kept when empty, as
    cert-manager keeps these four; e-mail addresses only when there are some)."""
    common_names = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    annotations = {
        f"{ANNOTATION_PREFIX}common-name": str(common_names[0].value) if common_names else "",
        f"{ANNOTATION_PREFIX}alt-names": _csv(san.get_values_for_type(x509.DNSName)),
        f"{ANNOTATION_PREFIX}ip-sans": _csv(
            [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        ),
        f"{ANNOTATION_PREFIX}uri-sans": _csv(
            san.get_values_for_type(x509.UniformResourceIdentifier)
        ),
    }
    emails = san.get_values_for_type(x509.RFC822Name)
    if emails:
        annotations[f"{ANNOTATION_PREFIX}email-sans"] = _csv(emails)
    return annotations


def chain_root(chain: list[x509.Certificate]) -> x509.Certificate | None:
    """The chain's last certificate if it is a root (signed by its own key), else None.

    ACME CAs send the leaf and its intermediates and leave the root out (Pebble's chain is
    leaf and intermediate; Let's Encrypt's ends at an intermediate or a cross-signed root),
    so the root can only be told here when a CA does include it.
    """
    if len(chain) < 2:
        return None
    top = chain[-1]
    if top.issuer != top.subject:
        return None
    try:
        top.verify_directly_issued_by(top)
    except (ValueError, TypeError, InvalidSignature):
        return None
    return top


def tls_secret_contents(
    request: StoreRequest, *, key: PrivateKey, chain_pem: bytes
) -> TlsSecretContents:
    """The Secret's data, labels and annotations for this key pair and this Certificate."""
    chain = x509.load_pem_x509_certificates(chain_pem)
    key_pem = private_key_pem(key, encoding=request.encoding)
    data = {"tls.crt": chain_pem, "tls.key": key_pem}
    root = chain_root(chain)
    if root is not None:
        data[CA_KEY] = root.public_bytes(serialization.Encoding.PEM)
    formats = set(request.additional_output_formats)
    if "CombinedPEM" in formats:
        data[OUTPUT_FORMAT_KEYS["CombinedPEM"]] = key_pem + b"\n" + chain_pem
    if "DER" in formats:
        data[OUTPUT_FORMAT_KEYS["DER"]] = private_key_der(key, encoding=request.encoding)
    annotations = {
        **request.secret_annotations,
        **certificate_annotations(chain[0]),
        CERTIFICATE_ANNOTATION: request.certificate.name,
        ISSUER_ANNOTATION: request.issuer_name,
        ISSUER_KIND_ANNOTATION: request.issuer_kind,
        ISSUER_GROUP_ANNOTATION: request.issuer_group,
    }
    if request.secret_labels or request.secret_annotations:
        record = {
            "labels": sorted(request.secret_labels),
            "annotations": sorted(request.secret_annotations),
        }
        annotations[TEMPLATE_KEYS_ANNOTATION] = json.dumps(record, separators=(",", ":"))
    labels = {
        **request.secret_labels,
        MANAGED_LABEL: "true",
        TLS_SECRET_LABEL: certificate_label(request.certificate.name),
    }
    return TlsSecretContents(data=data, labels=labels, annotations=annotations)


def _recorded(annotations: Mapping[str, str], kind: str) -> set[str]:
    try:
        record = json.loads(annotations.get(TEMPLATE_KEYS_ANNOTATION, "{}"))
    except ValueError:
        return set()  # edited by hand into something else: nothing is known to be stale
    keys = record.get(kind, []) if isinstance(record, dict) else []
    return {key for key in keys if isinstance(key, str)}


def stale_metadata(
    labels: Mapping[str, str], annotations: Mapping[str, str], contents: TlsSecretContents
) -> tuple[list[str], list[str]]:
    """The labels and annotations on the Secret that an earlier ``secretTemplate`` put there
    and nothing puts there now (the record itself included, once there is no template)."""
    stale_labels = (_recorded(annotations, "labels") & set(labels)) - set(contents.labels)
    recorded = _recorded(annotations, "annotations") | {TEMPLATE_KEYS_ANNOTATION}
    stale_annotations = (recorded & set(annotations)) - set(contents.annotations)
    return sorted(stale_labels), sorted(stale_annotations)
