"""The CA's first answer, its ACME directory: where a wrong URL or an untrusted CA shows.

A server URL that serves a web page (a typo, the CA's home page, a proxy's login page)
and a TLS certificate the worker does not trust are mistakes in the Issuer that no retry
fixes, so both end the step at once (``BadRequest``) saying what to change. Anything else
(a CA down, a 5xx) stays in the taxonomy of ``acme_step`` and is retried. This is
``ClientV2.get_directory`` with the answer checked before it is parsed.
"""

from __future__ import annotations

import re

import requests
from acme import client as acme_client
from acme import messages
from temporalio.exceptions import ApplicationError

from acmeflow.activities.errors import acme_step, bad_request

REQUIRED_RESOURCES = frozenset({"newNonce", "newAccount", "newOrder"})
"""What RFC 8555 §7.1.1 requires of every directory."""
DIRECTORY_EXAMPLE = "https://acme-v02.api.letsencrypt.org/directory"
_TITLE = re.compile(r"<title[^>]*>\s*([^<]{1,80})", re.IGNORECASE)
_VERIFY_FAILURE = re.compile(r"certificate verify failed: ([^(')]+)")


def fetch_directory(server: str, net: acme_client.ClientNetwork) -> messages.Directory:
    """The directory at ``server``, or a reason a person can act on."""
    with acme_step(f"fetch ACME directory {server}"):
        try:
            # Any Content-Type: the answer is judged below, where a web page can be named.
            response = net.get(server, content_type="")
        except requests.exceptions.SSLError as error:
            if "CERTIFICATE_VERIFY_FAILED" in str(error):
                raise untrusted_tls(server, str(error)) from error
            raise
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.keys() >= REQUIRED_RESOURCES:
            raise not_a_directory(server, response)
        return messages.Directory.from_json(body)


def untrusted_tls(server: str, failure: str) -> ApplicationError:
    found = _VERIFY_FAILURE.search(failure)
    why = found.group(1).strip() if found else "certificate verify failed"
    return bad_request(
        f"the TLS certificate of {server} is not trusted ({why}): set spec.acme.caBundle to "
        "the base64 PEM of the CA that signs it (base64 -w0 ca.crt), or spec.acme.skipTLSVerify: "
        "true for development only"
    )


def not_a_directory(server: str, response: requests.Response) -> ApplicationError:
    content_type = response.headers.get("Content-Type", "no Content-Type").split(";")[0]
    title = _TITLE.search(response.text)
    page = f' (a web page titled "{title.group(1).strip()}")' if title else ""
    return bad_request(
        f"{server} is not an ACME directory: it answered HTTP {response.status_code} with "
        f"{content_type}{page}, not a JSON object with newNonce, newAccount and newOrder; "
        f"set spec.acme.server to the CA's ACME directory URL, e.g. {DIRECTORY_EXAMPLE}"
    )
