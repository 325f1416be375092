"""A nameserver's TSIG refusal of a dynamic update, in words a person can act on.

A nameserver that does not accept the TSIG signature answers NOTAUTH with a TSIG error
(RFC 8945 §5.3); dnspython raises that as a ``dns.tsig.PeerError``. It is a mistake in
the solver's configuration, not an outage, so it ends the step (``BadRequest``) instead of
being retried as "unreachable".
"""

from __future__ import annotations

import dns.name
import dns.tsig
from temporalio.exceptions import ApplicationError

from acmeflow.activities.errors import bad_request

_WHY: dict[type[dns.tsig.PeerError], tuple[str, str]] = {
    dns.tsig.PeerBadSignature: (
        "BADSIG",
        "the TSIG secret does not match the nameserver's key of that name: "
        "check the secret in tsigSecretSecretRef",
    ),
    dns.tsig.PeerBadKey: (
        "BADKEY",
        "the nameserver knows no TSIG key of that name and algorithm: "
        "check tsigKeyName and tsigAlgorithm",
    ),
    dns.tsig.PeerBadTime: (
        "BADTIME",
        "the clocks of the worker and the nameserver differ by more than the allowed fudge",
    ),
    dns.tsig.PeerBadTruncation: ("BADTRUNC", "the nameserver refused the truncated TSIG MAC"),
}


def tsig_refusal(
    error: dns.tsig.PeerError,
    *,
    what: str,
    server: tuple[str, int],
    key_name: dns.name.Name | None,
) -> ApplicationError:
    """BadRequest naming the server, the TSIG error code, the key and what to check."""
    code, advice = _WHY.get(type(error), ("error", str(error)))
    key = f" with TSIG key {key_name.to_text(omit_final_dot=True)}" if key_name else ""
    return bad_request(
        f"{what}: nameserver {server[0]}:{server[1]} refused the update{key} "
        f"(NOTAUTH, TSIG {code}): {advice}"
    )
