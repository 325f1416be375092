"""What a solver publishes for a challenge (RFC 8555 §8.1, §8.3, §8.4): pure functions."""

from __future__ import annotations

import base64
import hashlib

HTTP01_PATH_PREFIX = "/.well-known/acme-challenge/"
DNS01_LABEL = "_acme-challenge"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_authorization(token: str, thumbprint: str) -> str:
    """``token || '.' || base64url(JWK thumbprint)``: the HTTP-01 response body."""
    return f"{token}.{thumbprint}"


def dns01_txt_value(key_authz: str) -> str:
    """The TXT record value: base64url(SHA-256(key authorization))."""
    return b64url(hashlib.sha256(key_authz.encode()).digest())


def dns01_record_name(dns_name: str) -> str:
    """``_acme-challenge.<name>.``; a wildcard and its apex share this one name."""
    return f"{DNS01_LABEL}.{dns_name.removeprefix('*.').rstrip('.')}."


def http01_url_path(token: str) -> str:
    return HTTP01_PATH_PREFIX + token
