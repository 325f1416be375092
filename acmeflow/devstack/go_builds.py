"""Binaries the stack builds from the Go module proxy, cached outside the repo by version.

No prebuilt binaries can be downloaded here, so the stack compiles them once:
kube-apiserver, kube-controller-manager and kubectl, and Pebble. k/k's go.mod points its
``k8s.io/*`` staging modules at ``./staging``; a module that merely requires k/k must
replace each of them with the published ``v0.Y.Z`` tag instead. Pebble is the current
release rather than Debian's 2.4, which deadlocks under a few hundred concurrent orders
(FinalizeOrder goroutines waiting on the store's lock forever). acmeflow's own
cert-manager-controllers program (``deploy/cert-manager-controllers``) is keyed by
cert-manager's version and a hash of its sources, so an edited main.go never runs stale;
so is its DNS-01 webhook (``deploy/dns01-webhook``), which tests the webhook solver path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

KUBE_VERSION = "v1.35.4"
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kubectl")


PEBBLE_PACKAGE = "github.com/letsencrypt/pebble/v2/cmd/pebble"
PEBBLE_VERSION = "v2.10.3"


def cache_base() -> Path:
    """Where built binaries live; outside the repo so clones and CI runs share them."""
    configured = os.environ.get("ACMEFLOW_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "acmeflow"


def cache_root() -> Path:
    return cache_base() / "kube" / KUBE_VERSION


def pebble_binary() -> Path:
    return cache_base() / "pebble" / PEBBLE_VERSION / "pebble"


def build_pebble(log: Path | None = None) -> float:
    """``go install`` Pebble into the cache unless present; return seconds spent."""
    return _go_install(PEBBLE_PACKAGE, PEBBLE_VERSION, pebble_binary(), log)


def _go_install(package: str, version: str, target: Path, log: Path | None) -> float:
    """``go install package@version`` as ``target`` unless it is there; seconds spent."""
    if target.is_file():
        return 0.0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"acmeflow-{target.name}-") as tmp:
        env_bin = Path(tmp) / "bin"
        _go(
            ["install", f"{package}@{version}"],
            Path(tmp),
            log,
            extra_env={"GOBIN": str(env_bin), "GOFLAGS": "-buildvcs=false"},
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(env_bin / package.rsplit("/", 1)[-1]), target)
    return time.monotonic() - started


HELM_PACKAGE = "helm.sh/helm/v3/cmd/helm"
HELM_VERSION = "v3.22.0"
"""Helm lints and renders the chart in deploy/helm/acmeflow (tests/helm)."""


def helm_binary() -> Path:
    return cache_base() / "helm" / HELM_VERSION / "helm"


def build_helm(log: Path | None = None) -> float:
    """``go install`` Helm into the cache unless present; return seconds spent."""
    return _go_install(HELM_PACKAGE, HELM_VERSION, helm_binary(), log)


CERT_MANAGER_PROGRAM = Path(__file__).resolve().parents[2] / "deploy" / "cert-manager-controllers"
DNS01_WEBHOOK_PROGRAM = Path(__file__).resolve().parents[2] / "deploy" / "dns01-webhook"
"""A cert-manager DNS webhook of acmeflow's own (cert-manager's webhook library, RFC 2136)."""
CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager"
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"


def required_version(module: str, program: Path | None = None) -> str:
    """The version of ``module`` that a program's go.mod requires (cert-manager's by default).

    Read when asked, not on import: an installed wheel has no program sources, and its
    other commands must still work.
    """
    path = (program or CERT_MANAGER_PROGRAM) / "go.mod"
    if not path.is_file():
        raise RuntimeError(
            f"{path} is missing: acmeflow's Go programs are built from a checkout of acmeflow"
        )
    go_mod = path.read_text()
    found = re.search(rf"^\s*{re.escape(module)}\s+(v\S+)", go_mod, re.M)
    if found is None:
        raise RuntimeError(f"{path} does not require {module}")
    return found.group(1)


def program_hash(program: Path) -> str:
    """Short hash of a program's go.mod, go.sum and Go sources: an edit builds anew."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", *sorted(p.name for p in program.glob("*.go"))):
        digest.update(name.encode() + b"\0" + (program / name).read_bytes())
    return digest.hexdigest()[:8]


def cert_manager_program_hash() -> str:
    return program_hash(CERT_MANAGER_PROGRAM)


def _program_binary(program: Path, *, cache_name: str, binary: str) -> Path:
    """``<cache>/<cache_name>/<cert-manager version>-<hash8>/<binary>``."""
    key = f"{required_version(CERT_MANAGER_MODULE, program)}-{program_hash(program)}"
    return cache_base() / cache_name / key / binary


def cert_manager_binary() -> Path:
    """``<cache>/cert-manager/<version>-<hash8>/cert-manager-controllers``."""
    return _program_binary(
        CERT_MANAGER_PROGRAM, cache_name="cert-manager", binary="cert-manager-controllers"
    )


def dns01_webhook_binary() -> Path:
    """``<cache>/dns01-webhook/<cert-manager version>-<hash8>/dns01-webhook``."""
    return _program_binary(
        DNS01_WEBHOOK_PROGRAM, cache_name="dns01-webhook", binary="dns01-webhook"
    )


def _module_dir(module: str, log: Path | None) -> Path:
    """Where the module cache holds ``module`` at the version the program requires."""
    with tempfile.TemporaryDirectory(prefix="acmeflow-mod-") as tmp:
        info = json.loads(
            _go(
                ["mod", "download", "-json", f"{module}@{required_version(module)}"], Path(tmp), log
            )
        )
    return Path(info["Dir"])


def cert_manager_crds(log: Path | None = None) -> list[Path]:
    """cert-manager's six v1 CRDs from the same module version (``deploy/crds``)."""
    return sorted((_module_dir(CERT_MANAGER_MODULE, log) / "deploy" / "crds").glob("*.yaml"))


def gateway_api_crds(log: Path | None = None) -> list[Path]:
    """The Gateway API standard-channel CRDs at the version cert-manager requires.

    The channel also ships a ValidatingAdmissionPolicy (``*_vap_*``); it is no CRD and is left out.
    """
    standard = _module_dir(GATEWAY_API_MODULE, log) / "config" / "crd" / "standard"
    return sorted(
        p for p in standard.glob("gateway.networking.k8s.io_*.yaml") if "_vap_" not in p.name
    )


def _build_program(program: Path, target: Path, log: Path | None) -> float:
    """Build one of acmeflow's Go programs into the cache unless present; seconds spent.

    The build writes a ``.partial`` file and renames it, so an interrupted build never
    leaves a binary that looks finished.
    """
    if target.is_file():
        return 0.0
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    _go(["build", "-trimpath", "-ldflags=-s -w", "-o", str(partial), "."], program, log)
    partial.rename(target)
    return time.monotonic() - started


def build_cert_manager(log: Path | None = None) -> float:
    """acmeflow's cert-manager-controllers program."""
    return _build_program(CERT_MANAGER_PROGRAM, cert_manager_binary(), log)


def build_dns01_webhook(log: Path | None = None) -> float:
    """acmeflow's DNS webhook (``deploy/dns01-webhook``)."""
    return _build_program(DNS01_WEBHOOK_PROGRAM, dns01_webhook_binary(), log)


def binary_path(command: str) -> Path:
    return cache_root() / command


def binaries_present() -> bool:
    return all(binary_path(c).is_file() for c in KUBE_COMMANDS)


def staging_replacements(kube_mod: str, version: str) -> dict[str, str]:
    """Map each staging module k/k requires at v0.0.0 to its published tag."""
    staging_tag = "v0" + version[2:]  # v1.35.4 -> v0.35.4
    replaced = re.findall(r"^\s*(k8s\.io/[\w.\-/]+)\s+=>\s+\./staging/", kube_mod, re.M)
    return {module: staging_tag for module in replaced}


def _version_ldflags() -> str:
    """Stamp the version the way k/k's own build does, so kubectl skew checks work."""
    major, minor = KUBE_VERSION[1:].split(".")[:2]
    stamps = {
        "gitVersion": KUBE_VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    packages = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    flags = [f"-X {pkg}.{key}={value}" for pkg in packages for key, value in stamps.items()]
    return " ".join(["-s", "-w", *flags])


def _go(
    args: list[str], cwd: Path, log: Path | None = None, extra_env: dict[str, str] | None = None
) -> str:
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=mod -buildvcs=false",
        **(extra_env or {}),
    }
    out = subprocess.run(
        ["go", *args], cwd=cwd, env=env, check=False, capture_output=True, text=True
    )
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            handle.write(f"$ go {' '.join(args)}\n{out.stdout}{out.stderr}\n")
    if out.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed:\n{out.stderr[-4000:]}")
    return out.stdout


def build_kube_binaries(log: Path | None = None) -> float:
    """Build the binaries into the cache unless present; return seconds spent."""
    if binaries_present():
        return 0.0
    started = time.monotonic()
    target = cache_root()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="acmeflow-kube-") as tmp:
        work = Path(tmp)
        info = json.loads(
            _go(["mod", "download", "-json", f"k8s.io/kubernetes@{KUBE_VERSION}"], work, log)
        )
        kube_mod = Path(info["GoMod"]).read_text()
        go_directive = re.search(r"^go (\S+)", kube_mod, re.M)
        replaces = staging_replacements(kube_mod, KUBE_VERSION)
        lines = [
            "module acmeflow.local/kubebuild",
            f"go {go_directive.group(1) if go_directive else '1.24.0'}",
            f"require k8s.io/kubernetes {KUBE_VERSION}",
            "replace (",
            *(f"\t{module} => {module} {tag}" for module, tag in sorted(replaces.items())),
            ")",
        ]
        (work / "go.mod").write_text("\n".join(lines) + "\n")
        (work / "tools.go").write_text(
            "//go:build tools\npackage tools\n\nimport (\n"
            + "".join(f'\t_ "k8s.io/kubernetes/cmd/{c}"\n' for c in KUBE_COMMANDS)
            + ")\n"
        )
        _go(["mod", "tidy"], work, log)
        staging = work / "bin"
        _go(
            [
                "build",
                "-trimpath",
                f"-ldflags={_version_ldflags()}",
                "-o",
                str(staging) + "/",
                *(f"k8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS),
            ],
            work,
            log,
        )
        for command in KUBE_COMMANDS:
            shutil.move(str(staging / command), binary_path(command))
    return time.monotonic() - started


TEMPORAL_SERVER_MODULE = "go.temporal.io/server"
TEMPORAL_SERVER_VERSION = "v1.32.1"
"""v1.32.2 asks for Go 1.26.10; v1.32.1 builds with the machine's Go 1.26.8."""
TEMPORAL_SERVER_COMMANDS = {"cmd/server": "temporal-server", "cmd/tools/sql": "temporal-sql-tool"}


def temporal_server_dir() -> Path:
    """``<cache>/temporal-server/<version>/``: both binaries and the PostgreSQL schemas."""
    return cache_base() / "temporal-server" / TEMPORAL_SERVER_VERSION


def build_temporal_server(log: Path | None = None) -> float:
    """Build temporal-server and temporal-sql-tool unless cached; return seconds spent.

    The versioned PostgreSQL schema is copied out of the module beside them, so the
    cluster never needs the Go module cache once built.
    """
    target = temporal_server_dir()
    if (
        all((target / name).is_file() for name in TEMPORAL_SERVER_COMMANDS.values())
        and (target / "schema" / "visibility" / "versioned").is_dir()
    ):
        return 0.0
    started = time.monotonic()
    versioned = f"{TEMPORAL_SERVER_MODULE}@{TEMPORAL_SERVER_VERSION}"
    with tempfile.TemporaryDirectory(prefix="acmeflow-temporal-") as tmp:
        env_bin = Path(tmp) / "bin"
        _go(
            [
                "install",
                *(
                    f"{TEMPORAL_SERVER_MODULE}/{path}@{TEMPORAL_SERVER_VERSION}"
                    for path in TEMPORAL_SERVER_COMMANDS
                ),
            ],
            Path(tmp),
            log,
            extra_env={"GOBIN": str(env_bin), "GOFLAGS": "-buildvcs=false"},
        )
        module = Path(
            json.loads(_go(["mod", "download", "-json", versioned], Path(tmp), log))["Dir"]
        )
        target.mkdir(parents=True, exist_ok=True)
        for path, name in TEMPORAL_SERVER_COMMANDS.items():
            shutil.move(str(env_bin / Path(path).name), target / name)
    for schema in ("temporal", "visibility"):
        destination = target / "schema" / schema
        shutil.rmtree(destination, ignore_errors=True)
        shutil.copytree(module / "schema" / "postgresql" / "v12" / schema, destination)
        for copied in destination.rglob("*"):
            copied.chmod(0o755 if copied.is_dir() else 0o644)
    return time.monotonic() - started


if __name__ == "__main__":
    build_log = Path(tempfile.gettempdir()) / "acmeflow-go-build.log"
    seconds = build_pebble(build_log)
    print(f"pebble {PEBBLE_VERSION} ready at {pebble_binary()} ({seconds:.0f}s)")
    seconds = build_helm(build_log)
    print(f"helm {HELM_VERSION} ready at {helm_binary()} ({seconds:.0f}s)")
    seconds = build_kube_binaries(build_log)
    print(f"kubernetes {KUBE_VERSION} binaries ready in {cache_root()} ({seconds:.0f}s)")
    seconds = build_cert_manager(build_log)
    print(f"cert-manager controllers ready at {cert_manager_binary()} ({seconds:.0f}s)")
    seconds = build_dns01_webhook(build_log)
    print(f"DNS-01 webhook ready at {dns01_webhook_binary()} ({seconds:.0f}s)")
    seconds = build_temporal_server(build_log)
    print(
        f"temporal-server {TEMPORAL_SERVER_VERSION} ready in {temporal_server_dir()}"
        f" ({seconds:.0f}s)"
    )
