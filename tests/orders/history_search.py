"""Read a workflow history the way an attacker with Temporal access could: every payload,
every string, every encoding a secret could hide in.

A history is unfolded into *views*: its JSON, every string in it (JSON-unescaped), each
string with escapes undone and whitespace removed (a PEM's lines joined), and the bytes
every base64 run decodes to (standard and URL-safe, at each alignment), recursively, so
a PEM inside a JSON payload inside base64 is read down to its DER. A secret is found when
one of its needles (raw bytes: an EC key's private scalar, an HMAC key, a TSIG secret)
appears in any view.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from temporalio.client import WorkflowHistory

_DEPTH = 6
_MIN_RUN = 16
"""Shorter base64 runs are words and ids, not encoded secrets."""
_RUNS = (
    re.compile(rb"[A-Za-z0-9+/]{%d,}=*" % _MIN_RUN),
    re.compile(rb"[A-Za-z0-9_-]{%d,}=*" % _MIN_RUN),
)
_ESCAPES = ((rb"\r", b"\r"), (rb"\n", b"\n"), (rb"\t", b"\t"), (rb"\/", b"/"), (rb"\"", b'"'))
_WHITESPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class Secret:
    """Something that must never be in a history, as the raw bytes that would betray it."""

    name: str
    needles: tuple[bytes, ...]


def private_key_secret(name: str, pem: bytes) -> Secret:
    """An EC private key betrays itself by its scalar: in DER (PEM, PKCS#8 or SEC1), in a
    JWK's ``d`` once decoded, or written out in hex."""
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey), f"{name}: only EC keys are searched"
    size = (key.curve.key_size + 7) // 8
    scalar = key.private_numbers().private_value.to_bytes(size, "big")
    return Secret(name, (scalar, scalar.hex().encode()))


def text_secret(name: str, value: str) -> Secret:
    """A secret given as text (a TSIG secret, an EAB HMAC key): the text, and the key bytes
    it encodes when it is base64 (either alphabet)."""
    needles = [value.encode()]
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) >= _MIN_RUN:
            needles.append(raw)
    return Secret(name, tuple(dict.fromkeys(needles)))


class HistoryText:
    """Every view of one history, searched for secrets."""

    def __init__(self, history: WorkflowHistory) -> None:
        self.workflow_id = history.workflow_id
        seen: set[bytes] = set()
        _unfold(history.to_json().encode(), _DEPTH, seen)
        self._views = seen

    def contains(self, secret: Secret) -> bool:
        return any(needle in view for view in self._views for needle in secret.needles)

    def found(self, secrets: list[Secret]) -> list[str]:
        """Names of the secrets that appear anywhere in the history."""
        return [s.name for s in secrets if self.contains(s)]


def _unfold(data: bytes, depth: int, seen: set[bytes]) -> None:
    if data in seen:
        return
    seen.add(data)
    if depth == 0:
        return
    for text in _strings(data):
        _unfold(text, depth - 1, seen)
    unescaped = data
    for escaped, char in _ESCAPES:
        unescaped = unescaped.replace(escaped, char)
    joined = _WHITESPACE.sub(b"", unescaped)
    seen.add(joined)
    for decoded in _base64_runs(joined):
        _unfold(decoded, depth - 1, seen)


def _strings(data: bytes) -> Iterator[bytes]:
    """Every string of ``data`` when it is JSON (which undoes JSON escapes)."""
    try:
        node: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, str):
            yield item.encode()


def _base64_runs(data: bytes) -> Iterator[bytes]:
    """What each base64 run decodes to, at each of the four alignments it could start on."""
    for pattern, decode in zip(_RUNS, (base64.b64decode, base64.urlsafe_b64decode), strict=True):
        for run in pattern.findall(data):
            for skip in range(4):
                usable = run[skip:].rstrip(b"=")
                usable = usable[: len(usable) - 1] if len(usable) % 4 == 1 else usable
                try:
                    yield decode(usable + b"=" * (-len(usable) % 4))
                except (binascii.Error, ValueError):
                    continue
