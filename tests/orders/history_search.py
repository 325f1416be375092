"""Read a workflow history the way an attacker with Temporal access could: every payload."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from temporalio.client import WorkflowHistory


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data" and isinstance(value, str):
                with contextlib.suppress(binascii.Error, ValueError):
                    yield base64.b64decode(value).decode(errors="replace")
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def history_text(history: WorkflowHistory) -> str:
    """All text of a history: raw JSON plus every decoded payload and failure."""
    raw = history.to_json()
    return "\n".join([raw, *_strings(json.loads(raw))])


def private_key_traces(pem: bytes) -> list[str]:
    """Ways an EC private key would show if leaked: PEM text, JWK ``d``, hex scalar.

    Only the part of the PEM that encodes the secret scalar counts: the ASN.1 header and
    the public key inside a PKCS#8 file are the same as in public documents.
    """
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    size = (key.curve.key_size + 7) // 8
    scalar = key.private_numbers().private_value.to_bytes(size, "big")
    der = base64.b64decode(pem_body(pem))
    start = der.index(scalar)
    first, last = -(-start // 3) * 4, (start + size) // 3 * 4
    return [
        pem_body(pem)[first:last],
        base64.urlsafe_b64encode(scalar).rstrip(b"=").decode(),
        scalar.hex(),
    ]


def pem_body(pem: bytes) -> str:
    """The base64 of a PEM block without armour or line breaks (how a leak would look)."""
    lines = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
    return "".join(lines)


def fragments(secret: str, size: int = 24) -> list[str]:
    """Overlapping slices, so a secret re-wrapped or re-encoded in part is still found."""
    return [secret[i : i + size] for i in range(0, max(1, len(secret) - size + 1), size // 2)]
