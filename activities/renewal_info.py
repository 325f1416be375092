"""When the CA would like a certificate renewed: its ARI window (RFC 9773), read by GET.

The ``acme`` package's ``renewal_time`` picks a random time itself and hides the window,
the Retry-After and the explanation; the workflow needs all three (it picks a point it
can pick again identically, and says which rule set the time), so this reads the resource
itself, with the issuer's TLS settings and the worker's cached directory.

An ARI outage must never stand in the way of renewal: every failure here (no account key
yet, the CA down, a 404 for a certificate the CA forgot, a window that makes no sense) is
an answer, ``RenewalInfo(problem=...)``, and the workflow keeps the lifetime rule meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from temporalio import activity

from acmeflow.activities.acme_client import AcmeClients
from acmeflow.activities.errors import retry_after_delay
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.renewal_info import RenewalInfo, RenewalInfoRequest

RECHECK_MIN_S: Final = 60.0
RECHECK_MAX_S: Final = 86400.0
"""RFC 9773 §4.3: a Retry-After under a minute counts as a minute, over a day as a day."""
RECHECK_DEFAULT_S: Final = 6 * 3600.0
"""When the CA sends no readable Retry-After."""
RECHECK_AFTER_PROBLEM_S: Final = 3600.0
"""After a failed read: soon enough to follow a revocation, rare enough for an outage."""


def _rfc3339(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a timestamp")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_window(body: Any) -> tuple[str, str, str]:
    """``(start, end, explanationURL)`` of a RenewalInfo object; ValueError if it is not one.

    RFC 9773 §4.2: a window whose end does not follow its start is no answer at all.
    """
    window = body.get("suggestedWindow") if isinstance(body, dict) else None
    if not isinstance(window, dict):
        raise ValueError("the answer has no suggestedWindow")
    start, end = _rfc3339(window.get("start")), _rfc3339(window.get("end"))
    if end <= start:
        raise ValueError(f"the window ends ({_iso(end)}) before it starts ({_iso(start)})")
    explanation = body.get("explanationURL")
    return _iso(start), _iso(end), explanation if isinstance(explanation, str) else ""


def recheck_after(header: str | None, *, most: float) -> float:
    """The Retry-After to honour: clamped to [1 minute, 1 day], then to the worker's ``most``."""
    delay = retry_after_delay(header)
    seconds = RECHECK_DEFAULT_S if delay is None else delay.total_seconds()
    return min(max(seconds, RECHECK_MIN_S), RECHECK_MAX_S, most)


class RenewalInfoActivities:
    """Reads ARI windows through the worker's ACME clients; built once per worker."""

    def __init__(self, clients: AcmeClients, *, recheck_max_s: float = RECHECK_MAX_S) -> None:
        self._clients = clients
        self._recheck_max_s = recheck_max_s

    @activity.defn(name=ActivityName.FETCH_RENEWAL_INFO)
    def fetch_renewal_info(self, request: RenewalInfoRequest) -> RenewalInfo:
        """The window for ``request.certificate_id``; "not offered" or a problem, never a raise."""
        try:
            return self._fetch(request)
        except Exception as error:  # noqa: BLE001 -- an ARI failure is an answer (module doc)
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            activity.logger.info("ARI for %s unavailable: %s", request.certificate_id, message)
            return RenewalInfo(
                offered=True,
                problem=message,
                retry_after_s=min(RECHECK_AFTER_PROBLEM_S, self._recheck_max_s),
            )

    def _fetch(self, request: RenewalInfoRequest) -> RenewalInfo:
        key, alg = self._clients.account_key(request)
        net = self._clients.network(request, key, alg)
        try:
            directory = self._clients.directory(request, net)
            try:
                base = str(directory["renewalInfo"])
            except KeyError:
                return RenewalInfo(offered=False)
            url = f"{base.rstrip('/')}/{request.certificate_id}"
            # Any Content-Type: the body is judged by parse_window, which can say what is wrong.
            response = net.get(url, content_type="")
            start, end, explanation = parse_window(response.json())
            return RenewalInfo(
                offered=True,
                start=start,
                end=end,
                retry_after_s=recheck_after(
                    response.headers.get("Retry-After"), most=self._recheck_max_s
                ),
                explanation_url=explanation,
            )
        finally:
            net.session.close()
