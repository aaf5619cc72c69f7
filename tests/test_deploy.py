"""deploy/: the Kubernetes manifests and the Compose file validate against their schemas (offline: both validators
bundle the schemas), and the things a reviewer checks hold: non-root image with a health check, probes on
/healthz and /readyz, a read-only root file system, no secret value anywhere, a broker.toml the broker accepts.

The validators and PyYAML come with the ``deploy`` extra (``pip install -e ".[deploy]"``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from broker.config.settings import load_settings
from broker.instance import InstanceOptions, init_instance

yaml = pytest.importorskip("yaml", reason="needs the deploy extra: pip install -e '.[deploy]'")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
#: the oldest Kubernetes the manifests are meant for (as in .ci/run; kubernetes-validate bundles its schemas)
K8S_VERSION = "1.30.0"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _resources() -> list[dict[str, Any]]:
    return [d for path in K8S for d in _documents(path)]


def _kind(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in _resources() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _pod_specs() -> list[dict[str, Any]]:
    return [d["spec"]["template"]["spec"] for d in _resources() if d["kind"] in ("Deployment", "Job")]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


# -- schemas ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", K8S, ids=lambda p: p.name)
def test_kubernetes_manifest_is_valid(path: Path) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="needs the deploy extra")
    for document in _documents(path):
        # strict: an unknown (misspelt) field is an error, not silently ignored by the API server
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_every_manifest_kind_is_there() -> None:
    kinds = sorted({d["kind"] for d in _resources()})
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job", "PodDisruptionBudget", "Service"]
    assert _kind("HorizontalPodAutoscaler")["apiVersion"] == "autoscaling/v2"
    assert _kind("PodDisruptionBudget")["apiVersion"] == "policy/v1"


def test_compose_file_is_valid() -> None:
    pytest.importorskip("check_jsonschema", reason="needs the deploy extra")
    result = subprocess.run(  # the compose-spec schema is vendored in check-jsonschema: no download
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(DEPLOY / "compose.yaml")], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the image -------------------------------------------------------------------------------------------------
def _dockerfile_lines() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_image_is_multi_stage_runs_as_non_root_and_checks_health() -> None:
    lines = _dockerfile_lines()
    stages = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert len(stages) >= 2, "a build stage and a runtime stage"
    runtime = lines[stages[-1]:]
    users = [line.split()[1] for line in runtime if line.upper().startswith("USER ")]
    assert users, "the runtime stage sets USER"
    assert users[-1].split(":")[0] not in ("0", "root"), "the image must not run as root"
    healthcheck = [line for line in runtime if line.upper().startswith("HEALTHCHECK ")]
    assert healthcheck and "/healthz" in healthcheck[-1]
    cmd = next(line for line in reversed(runtime) if line.upper().startswith("CMD "))
    assert "gunicorn" in cmd and "deploy/gunicorn.conf.py" in cmd and "broker:create_app()" in cmd
    # pysaml2 runs the xmlsec1 program for SAML encryption: the runtime image must have it
    assert any(line.startswith("RUN ") and "xmlsec1" in line for line in runtime)


def test_image_never_contains_keys_or_instance_data() -> None:
    copied = [line for line in _dockerfile_lines() if line.upper().startswith(("COPY ", "ADD "))]
    for line in copied:
        assert not re.search(r"\b(certs|metadata|instance|secrets?)\b/?", line.split("--from")[0]), line
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", ".dockerignore excludes everything, then lets in what the build needs"
    allowed = [line[1:] for line in ignore if line.startswith("!")]
    assert not [a for a in allowed if a.strip("/").split("/")[0] in ("certs", "metadata", "instance", ".venv")]


# -- Kubernetes --------------------------------------------------------------------------------------------------
def test_deployment_probes_readiness_and_liveness() -> None:
    pod = _kind("Deployment", "broker")["spec"]["template"]["spec"]
    (broker,) = pod["containers"]
    assert broker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert broker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"] for p in broker["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert broker[probe]["httpGet"]["port"] in port_names
    # readiness may wait for the database (2 s) and Redis (1 s each) before answering
    assert broker["readinessProbe"]["timeoutSeconds"] >= 4


@pytest.mark.parametrize("pod", _pod_specs() if K8S else [], ids=lambda p: _containers(p)[-1]["name"])
def test_pods_run_non_root_on_a_read_only_root_with_limits(pod: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    for container in _containers(pod):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_broker_writes_only_to_its_volumes() -> None:
    pod = _kind("Deployment", "broker")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/srv/broker/var"]["name"]]
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    writable = {path for path, m in mounts.items() if not m.get("readOnly")}
    assert writable == {"/srv/broker/var", "/tmp"}


def test_database_and_redis_urls_come_from_secrets() -> None:
    for pod in _pod_specs():
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        for name in ("BROKER_DATABASE_URL", "BROKER_REDIS_URL"):
            assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["name"], name


# -- no secret values --------------------------------------------------------------------------------------------
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|_URL$", re.IGNORECASE)
_NOT_SECRET = {"BROKER_CONFIG"}


def _deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_no_secret_values_anywhere_in_deploy() -> None:
    for path in _deploy_files():
        text = path.read_text()
        assert "PRIVATE KEY-----" not in text, path
        # a URL with a password: scheme://user:password@host (an empty user with ":...@" counts too)
        for url in re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"'`]+", text):
            assert not re.match(r"[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]+@", url), f"{path}: {url}"
    assert not [d for d in _resources() if d["kind"] == "Secret"], "Secrets are created from files, not shipped"


def test_kubernetes_env_takes_secret_looking_values_from_secrets() -> None:
    for pod in _pod_specs():
        for container in _containers(pod):
            for entry in container.get("env", []):
                if _SECRET_NAME.search(entry["name"]) and entry["name"] not in _NOT_SECRET:
                    assert "value" not in entry, f"{entry['name']} must come from a Secret (valueFrom)"


def test_compose_passes_secrets_as_files_only() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        for key in service.get("environment") or {}:
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert key.endswith("_FILE"), f"{name}: {key} must name a file"
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"file"}, f"secret {name} must be a file, not an inline value or environment"


# -- the configuration shipped in the ConfigMap ------------------------------------------------------------------
def test_configmap_broker_toml_is_accepted_by_the_broker(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    config = init_instance(InstanceOptions(instance))  # for the secret files the config names under certs/
    config.write_text(_kind("ConfigMap", "broker-config")["data"]["broker.toml"])
    settings = load_settings(config, environ={
        "BROKER_DATABASE_URL": "postgresql+psycopg://broker@db.internal:5432/broker?connect_timeout=5",
        "BROKER_REDIS_URL": "redis://redis.internal:6379/0"})
    assert settings.session_type == "redis" and settings.base_url.startswith("https://")
    assert settings.saml.metadata_build_in_child is True  # under gunicorn (deploy/README.md)
    assert settings.saml.metadata_cache_dir == instance / "var" / "idp-metadata"


# -- the delivery worker beside the web workers (issue 18) -------------------------------------------------------
def test_compose_runs_the_delivery_worker_after_the_migration() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    worker, broker = services["worker"], services["broker"]
    assert worker["command"] == ["broker", "worker"] and worker["image"] == broker["image"]
    assert worker["environment"]["BROKER_DATABASE_URL"] == broker["environment"]["BROKER_DATABASE_URL"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["healthcheck"] == {"disable": True}, "no HTTP port: the image's /healthz check cannot pass"
    assert "ports" not in worker and worker["restart"] == "unless-stopped"


def test_kubernetes_runs_the_delivery_worker_from_the_broker_image() -> None:
    worker = _kind("Deployment", "broker-worker")
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    broker = _kind("Deployment", "broker")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["broker", "worker"] and container["image"] == broker["image"]
    assert "ports" not in container and worker["spec"]["replicas"] >= 1
    assert pod["terminationGracePeriodSeconds"] >= 130, "the pass in progress finishes: 10 POSTs of 13 s"
    selectors = [d["spec"]["selector"] for d in _resources() if d["kind"] == "Service"]
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert not [s for s in selectors if all(labels.get(k) == v for k, v in s.items())], "no Service for it"
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp"}


def test_the_systemd_unit_runs_the_worker_beside_gunicorn() -> None:
    unit = dict(line.split("=", 1) for line in (DEPLOY / "systemd" / "broker-worker.service").read_text()
                .splitlines() if "=" in line and not line.startswith("#"))
    assert unit["ExecStart"].endswith("broker worker") and unit["KillSignal"] == "SIGTERM"
    assert int(unit["TimeoutStopSec"]) >= 130 and unit["User"] != "root" and unit["NoNewPrivileges"] == "yes"
    assert unit["Environment"] == "BROKER_CONFIG=/etc/broker/broker.toml"
