"""The worker's configuration: defaults < file < environment < command-line flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pydantic
import pytest
from kubernetes import client

from acmeflow.contracts.activities import ActivityName
from acmeflow.plumbing.activity_methods import activity_methods
from acmeflow.plumbing.settings import add_config_flags
from acmeflow.worker.build import activity_instances
from acmeflow.worker.config import WorkerConfig, load_config
from acmeflow.worker.kubernetes import kubernetes_services


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_flags(parser, WorkerConfig)
    return parser.parse_args(list(argv))


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "worker.yaml"
    path.write_text(text)
    return path


def test_defaults_without_any_source() -> None:
    config = load_config(parse(), env={})
    assert config == WorkerConfig()
    assert config.temporal_address == "127.0.0.1:7233"
    assert config.temporal_namespace == "default"
    assert config.task_queue == "acmeflow"
    assert config.max_concurrent_activities == 200
    assert not config.uses_tls


def test_load_config_without_arguments_uses_defaults_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in WorkerConfig.model_fields:
        monkeypatch.delenv("ACMEFLOW_" + name.upper(), raising=False)
    monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    config = load_config()
    assert config.temporal_address == "temporal.internal:7233"
    assert config.task_queue == "acmeflow"


def test_file_overrides_defaults(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        "task_queue: from-file\nmax_concurrent_activities: 17\nhttp01_store_dir: /srv/acme\n",
    )
    config = load_config(parse("--config", str(path)), env={})
    assert config.task_queue == "from-file"
    assert config.max_concurrent_activities == 17
    assert config.http01_store_dir == Path("/srv/acme")
    assert config.temporal_address == "127.0.0.1:7233"  # untouched fields keep defaults


def test_json_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "worker.json"
    path.write_text(json.dumps({"task_queue": "json-queue", "temporal_tls": True}))
    config = load_config(parse("--config", str(path)), env={})
    assert config.task_queue == "json-queue"
    assert config.uses_tls


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "")
    assert load_config(parse("--config", str(path)), env={}) == WorkerConfig()


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "task_queue: from-file\nself_check_dns_port: 5353\n")
    config = load_config(
        parse("--config", str(path)),
        env={"ACMEFLOW_TASK_QUEUE": "from-env", "ACMEFLOW_MAX_CONCURRENT_ACTIVITIES": "9"},
    )
    assert config.task_queue == "from-env"
    assert config.max_concurrent_activities == 9  # converted from the string
    assert config.self_check_dns_port == 5353  # the file still counts for other fields


def test_flags_override_environment_and_file(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        "task_queue: from-file\ntemporal_namespace: file-ns\ngraceful_shutdown_s: 5\n",
    )
    config = load_config(
        parse("--config", str(path), "--task-queue", "from-flag", "--graceful-shutdown-s", "2.5"),
        env={"ACMEFLOW_TASK_QUEUE": "from-env", "ACMEFLOW_TEMPORAL_NAMESPACE": "env-ns"},
    )
    assert config.task_queue == "from-flag"
    assert config.graceful_shutdown_s == 2.5
    assert config.temporal_namespace == "env-ns"


def test_each_layer_wins_over_the_one_below() -> None:
    """One field through all four layers, removing the top one each time."""
    env = {"ACMEFLOW_SELF_CHECK_RESOLVER": "10.0.0.53:53"}
    flags = ("--self-check-resolver", "127.0.0.1:5353")
    assert load_config(parse(*flags), env=env).self_check_resolver == "127.0.0.1:5353"
    assert load_config(parse(), env=env).self_check_resolver == "10.0.0.53:53"
    assert load_config(parse(), env={}).self_check_resolver == ""


def test_temporal_cli_variables_are_read() -> None:
    config = load_config(
        parse(), env={"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_NAMESPACE": "prod"}
    )
    assert config.temporal_address == "temporal:7233"
    assert config.temporal_namespace == "prod"


def test_acmeflow_variable_wins_over_the_temporal_cli_variable() -> None:
    config = load_config(
        parse(),
        env={"TEMPORAL_ADDRESS": "shared:7233", "ACMEFLOW_TEMPORAL_ADDRESS": "mine:7233"},
    )
    assert config.temporal_address == "mine:7233"


def test_temporal_address_flag_wins_over_temporal_address_variable(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "temporal_address: file:7233\n")
    args = parse("--config", str(path), "--temporal-address", "flag:7233")
    assert load_config(args, env={"TEMPORAL_ADDRESS": "env:7233"}).temporal_address == ("flag:7233")
    assert load_config(parse("--config", str(path)), env={"TEMPORAL_ADDRESS": "env:7233"}) == (
        WorkerConfig(temporal_address="env:7233")
    )


def test_unrelated_environment_is_ignored() -> None:
    config = load_config(parse(), env={"TASK_QUEUE": "nope", "ADDRESS": "nope"})
    assert config == WorkerConfig()


def test_unknown_key_in_the_file_is_rejected_by_name(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, "task_queue: q\ntask_qeue: typo\n")
    with pytest.raises(pydantic.ValidationError) as caught:
        load_config(parse("--config", str(path)), env={})
    assert "task_qeue" in str(caught.value)
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_wrongly_typed_value_is_rejected_by_name() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        load_config(parse(), env={"ACMEFLOW_MAX_CONCURRENT_ACTIVITIES": "many"})
    assert "max_concurrent_activities" in str(caught.value)


def test_every_field_has_a_flag_with_its_docstring_as_help() -> None:
    parser = argparse.ArgumentParser()
    add_config_flags(parser, WorkerConfig)
    helps = {action.dest: action.help for action in parser._actions}
    for name, info in WorkerConfig.model_fields.items():
        assert info.description, f"{name} has no docstring"
        assert helps[f"cfg_{name}"] == info.description


@pytest.mark.parametrize(
    ("values", "uses_tls"),
    [
        ({}, False),
        ({"temporal_tls": True}, True),
        ({"temporal_tls_cert": "/etc/acmeflow/client.pem"}, True),
        ({"temporal_api_key_file": "/etc/acmeflow/api-key"}, True),
    ],
)
def test_tls_is_implied_by_a_client_certificate_or_api_key(
    values: dict[str, object], uses_tls: bool
) -> None:
    assert WorkerConfig.model_validate(values).uses_tls is uses_tls


def test_a_worker_in_a_cluster_serves_every_activity_by_its_contract_name() -> None:
    """Workflows schedule activities by ``ActivityName``; a name no worker serves hangs an order.

    The progress of Certificates and Issuers goes to the bridge's own task queue instead.
    """
    config = WorkerConfig(kubernetes=True)
    services = kubernetes_services(config, api_client=client.ApiClient())
    methods = activity_methods(*activity_instances(config, kubernetes=services))
    served = [getattr(method, "__temporal_activity_definition").name for method in methods]
    bridge_side = {ActivityName.PUBLISH_CERTIFICATE_PROGRESS, ActivityName.PUBLISH_ISSUER_STATUS}
    assert sorted(served) == sorted(set(ActivityName) - bridge_side)
