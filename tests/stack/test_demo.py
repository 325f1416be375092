"""``make demo`` runs on a fresh stack and shows what the README promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from acmeflow.devstack.stack import DevStack, StackInfo

REPO = Path(__file__).resolve().parents[2]


def test_demo_walks_from_a_certificate_to_its_workflow(tmp_path: Path, stack: StackInfo) -> None:
    """The user's path: Issuer and Certificate applied, Ready, its Secret, describe of the
    Certificate, its Order and its Challenges (by their Events, since a valid Challenge is
    deleted once cleaned up), the one-screen status, and the workflow in Temporal."""
    state_dir = tmp_path / "demo-stack"
    env = {
        **os.environ,
        "ACMEFLOW_STATE_DIR": str(state_dir),
        "DEMO_OUT": str(tmp_path / "certs"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    ui = ""
    try:
        demo = subprocess.run(
            ["bash", str(REPO / "deploy" / "demo.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        if (state_dir / "stack.json").exists():
            ui = StackInfo.load(state_dir).temporal_ui_url
            DevStack.existing(state_dir).down()
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    sections = _sections(out)
    # acmeflow issue, without Kubernetes: its lines in the order things happened.
    issue = sections["acmeflow issue"]
    assert "DNS:test3.example.com, DNS:test4.example.com" in issue
    assert (tmp_path / "certs" / "tls.key").exists()
    assert _index(issue, "OrderValid") < _index(issue, "[valid] done")
    # The Certificate, Ready, and its Secret read by openssl.
    assert "certificate.acmeflow.io/web condition met" in sections["kubectl apply"]
    assert "DNS:test1.example.com, DNS:test2.example.com" in sections["the Secret web-tls"]
    described = sections["kubectl describe certificate web"]
    assert "Reason:                Ready" in described
    assert "The certificate has been successfully issued" in described
    [order] = re.findall(r'Created Order resource "(web-\d+)"', described)
    order_section = sections[f"kubectl describe order {order}"]
    assert "State:         valid" in order_section
    assert f'Created Challenge resource "{order}-0"' in order_section
    assert "Order completed successfully" in order_section
    challenges = sections[f"the Challenges of order {order}"]
    for domain in ("test1.example.com", "test2.example.com"):
        verified = rf'{order}-\d+ +DomainVerified +Domain "{domain}" verified with "HTTP-01"'
        assert re.search(verified, challenges), challenges
    status = sections["acmeflow status certificate web"]
    assert "  Certificate: certificate/demo/web (Running)" in status
    assert f"  Order: order/demo/{order} (Completed)" in status
    link = f"{ui}/namespaces/default/workflows/certificate%2Fdemo%2Fweb"
    temporal = sections["the same Certificate in Temporal"]
    assert "WorkflowId            certificate/demo/web" in temporal
    assert f"Temporal UI: {link}" in temporal


def _sections(out: str) -> dict[str, str]:
    """The demo's output by its ``== title: ...`` headings (the title up to a colon or
    parenthesis)."""
    found: dict[str, str] = {}
    for part in out.split("\n== ")[1:]:
        heading, _, body = part.partition("\n")
        found[re.split(r"[:(]", heading, maxsplit=1)[0].strip()] = body
    return found


def _index(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)
