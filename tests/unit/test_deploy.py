"""The deployment files are valid without a container engine: docker-compose.yml against the
compose-spec schema and Debian's docker-compose, the Kubernetes manifests against the API
schemas, and the Dockerfile, the ConfigMaps and the image's health check against what the
code actually does."""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from cli.main import app as cli_app
from monitor.rules import load_rules
from monitor.rules.watch import digest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
BIN = Path(sys.executable).parent
LONG_RUNNING = {"kafka", "worker-1", "worker-2", "notifier", "prometheus", "grafana"}


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _yaml_all(path: Path) -> list[Any]:
    return [doc for doc in YAML(typ="safe").load_all(path.read_text(encoding="utf-8")) if doc]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(_yaml(COMPOSE))


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


# --- docker-compose.yml ----------------------------------------------------------------------


def test_compose_matches_the_compose_spec_schema() -> None:
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_is_accepted_by_docker_compose_with_the_example_env() -> None:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is missing: `apt-get install docker-compose` (.ci/run does)"
    args = [tool, "--env-file", str(ROOT / ".env.example"), "-f", str(COMPOSE), "config", "-q"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_run_without_the_grafana_password(tmp_path: Path) -> None:
    """Secrets have no committed default: without .env, compose stops with a clear message."""
    tool = shutil.which("docker-compose")
    assert tool
    empty = tmp_path / "empty.env"
    empty.write_text("")
    args = [tool, "--env-file", str(empty), "-f", str(COMPOSE), "config", "-q"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_every_file_compose_mounts_or_builds_from_exists(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source in named:
                continue
            assert source.startswith("./"), f"{name}: {source} is neither named nor relative"
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name


def test_compose_services_are_pinned_restarted_and_health_checked(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert LONG_RUNNING | {"kafka-init", "simulator"} <= set(services)
    for name, service in services.items():
        image = service["image"]
        if not image.startswith("${CXMON_IMAGE"):
            repo, _, tag = image.rpartition(":")
            assert repo and tag and tag != "latest", f"{name}: image {image} is not pinned"
        assert "restart" in service, f"{name} has no restart policy"
        for dependency in (service.get("depends_on") or {}).values():
            assert "condition" in dependency, f"{name}: depends_on without a condition"
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert "test" in services[name]["healthcheck"], f"{name} has no health check"
    assert services["kafka-init"]["restart"] == "no"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in _env(services["kafka"])["KAFKA_PROCESS_ROLES"]  # KRaft
    for name in ("worker-1", "worker-2", "notifier", "simulator"):
        condition = services[name]["depends_on"]["kafka-init"]["condition"]
        assert condition == "service_completed_successfully", name


def test_compose_workers_serve_metrics_where_prometheus_scrapes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    prometheus = _yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    targets = [
        target
        for job in prometheus["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert targets, "prometheus.yml scrapes nothing"
    for target in targets:
        host, port = target.split(":")
        env = _env(services[host])
        assert env["CXMON_METRICS_HOST"] == "0.0.0.0", f"{host} serves on loopback only"  # noqa: S104
        command = services[host]["command"][0]
        port_setting = (
            "CXMON_NOTIFIER_METRICS_PORT" if command == "notify" else "CXMON_METRICS_PORT"
        )
        assert env[port_setting] == port, f"{host}: {port_setting} is not {port}"
        assert f":{port}/readyz" in " ".join(services[host]["healthcheck"]["test"]), host


def test_compose_commands_exist_in_the_cli(compose: dict[str, Any]) -> None:
    """`cxmon run`, `cxmon notify` and `cxmon simulate ...` with the flags compose passes."""
    for name in ("worker-1", "notifier", "simulator"):
        command = [
            re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", part)
            for part in compose["services"][name]["command"]
        ]
        # in process (the command's own parser and help), not three interpreters importing it
        result = CliRunner().invoke(cli_app, [*command[:1], "--help"], terminal_width=200)
        assert result.exit_code == 0, f"{name}: {result.output}"
        for flag in (part for part in command[1:] if part.startswith("--")):
            assert flag in result.output, f"{name}: cxmon {command[0]} has no {flag}"


def test_the_env_example_covers_every_variable_compose_reads(compose: dict[str, Any]) -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text(encoding="utf-8")))
    assert used - defined - {"CXMON_IMAGE", "KAFKA_CLUSTER_ID", "CXMON_LOG_LEVEL"} == set()
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=ROOT, capture_output=True, timeout=30
    )
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_the_env_examples_secrets_are_placeholders() -> None:
    values = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    secrets = [k for k in values if re.search("PASSWORD|SECRET|_URL|MAILTO", k)]
    assert secrets
    assert all(values[k] in ("", "change-me") for k in secrets), values


# --- deploy/Dockerfile -----------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def test_dockerfile_is_multi_stage_pinned_and_runs_as_a_user() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    steps = _instructions(text)
    args = dict(value.split("=", 1) for op, value in steps if op == "ARG" and "=" in value)
    froms = [value for op, value in steps if op == "FROM"]
    assert len(froms) >= 2, "expected a builder stage and a final stage"
    assert " AS builder" in froms[0]
    for line in froms:
        image = line.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), image
        assert name == "python" and "slim" in tag, image
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [value for op, value in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    run_lines = " ".join(value for op, value in final if op == "RUN")
    assert not re.search(r"apt-get install|build-essential|\bgcc\b", run_lines)
    assert any(op == "HEALTHCHECK" and "/healthz" in value for op, value in final)
    assert ("ENTRYPOINT", '["cxmon"]') in final
    env = " ".join(value for op, value in final if op == "ENV")
    for setting in ("CXMON_METRICS_HOST=0.0.0.0", "CXMON_RULES_PATH=/etc/cxmon/rules"):
        assert setting in env


def test_everything_the_dockerfile_copies_exists_and_is_not_ignored() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".env", "tests"} <= ignored
    for op, value in _instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if op != "COPY" or "--from" in value:
            continue
        sources = [part for part in value.split() if not part.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/").split("/")[0] not in ignored, f"{source} is dockerignored"


def test_the_image_health_check_runs_against_a_live_server() -> None:
    """The HEALTHCHECK's python snippet passes against /healthz and fails with nothing there."""
    from prometheus_client import CollectorRegistry

    from monitor.httpserver import Health, serve

    steps = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    check = next(value for op, value in steps if op == "HEALTHCHECK")
    argv = YAML(typ="safe").load(check[check.index("CMD") + 3 :].strip())
    assert argv[:2] == ["python", "-c"]
    server = serve("127.0.0.1", 0, CollectorRegistry(), Health())
    try:
        env = {"CXMON_METRICS_PORT": str(server.port), "CXMON_NOTIFIER_METRICS_PORT": "1"}
        alive = subprocess.run([sys.executable, "-c", argv[2]], env=env, timeout=30)
        assert alive.returncode == 0
    finally:
        server.close()
    dead = subprocess.run([sys.executable, "-c", argv[2]], env=env, timeout=30)
    assert dead.returncode == 1


# --- deploy/k8s ------------------------------------------------------------------------------


def _manifests() -> list[Path]:
    kustomization = _yaml(K8S / "kustomization.yaml")
    return [K8S / name for name in kustomization["resources"]]


def test_kustomization_lists_every_manifest() -> None:
    listed = {path.name for path in _manifests()}
    present = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_k8s_manifests_validate_against_the_api_schemas() -> None:
    result = subprocess.run(
        [BIN / "kubernetes-validate", "--strict", "--quiet", *_manifests()],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _by_kind() -> dict[tuple[str, str], dict[str, Any]]:
    documents = [doc for path in _manifests() for doc in _yaml_all(path)]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}


def test_k8s_workloads_probe_the_health_endpoints_and_reference_secrets() -> None:
    objects = _by_kind()
    assert not [key for key in objects if key[0] == "Secret"], "no Secret values in the repo"
    for name, port in (("cxmon-worker", 9464), ("cxmon-notifier", 9465)):
        pod = objects[("Deployment", name)]["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] >= 30
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["ports"][0]["containerPort"] == port
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert ":" not in container["image"]  # the tag is set once, in kustomization.yaml
        secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert "cxmon-kafka" in secrets
        service = objects[("Service", name)]
        annotations = service["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
    worker = objects[("Deployment", "cxmon-worker")]
    assert worker["spec"]["replicas"] == 2
    pdb = objects[("PodDisruptionBudget", "cxmon-worker")]
    assert pdb["spec"]["selector"] == worker["spec"]["selector"]
    settings = objects[("ConfigMap", "cxmon-settings")]["data"]
    assert not any(re.search("PASSWORD(?!_FILE)|SECRET", key) for key in settings)


def test_k8s_settings_are_real_settings() -> None:
    """Every CXMON_* the manifests set is a field of Settings (a typo would be ignored)."""
    from monitor.settings import Settings

    fields = {f"CXMON_{name.upper()}" for name in Settings.model_fields}
    names = set(_by_kind()[("ConfigMap", "cxmon-settings")]["data"])
    for path in K8S.glob("*.deployment.yaml"):
        names |= set(re.findall(r"name: (CXMON_\w+)", path.read_text(encoding="utf-8")))
    names |= set(re.findall(r"\b(CXMON_[A-Z_]+)(?==|:)", COMPOSE.read_text(encoding="utf-8")))
    names |= set(re.findall(r"\b(CXMON_[A-Z_]+)=", DOCKERFILE.read_text(encoding="utf-8")))
    # CXMON_IMAGE picks the image in compose; CXMON_COMPILE is read by the build, not the worker.
    assert names - fields - {"CXMON_IMAGE", "CXMON_COMPILE"} == set()


def test_the_configmaps_match_the_rules_and_alerting_files() -> None:
    generator = runpy.run_path(str(K8S / "configmaps.py"))
    for path, text in generator["render"]().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is stale: run python deploy/k8s/configmaps.py"
        )
    data = _by_kind()[("ConfigMap", "cxmon-rules")]["data"]
    for name, text in data.items():
        assert (ROOT / "rules" / name).read_text(encoding="utf-8") == text


def _configmap_volume(directory: Path, files: dict[str, str], stamp: str) -> None:
    """The layout the kubelet writes for a ConfigMap volume: a timestamped directory, a
    `..data` link to it, and one link per key."""
    target = directory / f"..{stamp}"
    target.mkdir()
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    link = directory / "..data_tmp"
    link.symlink_to(target.name)
    link.replace(directory / "..data")
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")


def test_rules_mounted_from_the_configmap_load_once_and_reload_on_change(tmp_path: Path) -> None:
    data = _by_kind()[("ConfigMap", "cxmon-rules")]["data"]
    _configmap_volume(tmp_path, data, "2026_05_01_09_00_00.1")
    mounted = load_rules([tmp_path])
    shipped = load_rules([ROOT / "rules"])
    assert not mounted.errors, [str(issue) for issue in mounted.errors]
    assert sorted(r.id for r in mounted.rules) == sorted(r.id for r in shipped.rules)
    before = digest([tmp_path])
    changed = dict(data)
    first = sorted(changed)[0]
    changed[first] = changed[first].replace("title:", "title: (edited)", 1)
    _configmap_volume(tmp_path, changed, "2026_05_01_09_05_00.2")
    assert digest([tmp_path]) != before  # the worker's hot reload sees the update


# --- docs ------------------------------------------------------------------------------------


def test_the_settings_reference_in_the_docs_is_current() -> None:
    from monitor.settings import Settings
    from monitor.settings_reference import (
        MEANINGS,
        REFERENCE_END,
        REFERENCE_START,
        settings_reference,
    )

    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    block = text[text.index(REFERENCE_START) + len(REFERENCE_START) : text.index(REFERENCE_END)]
    assert block.strip() == settings_reference().strip(), (
        "docs/deploy.md is stale: run python -m monitor.settings_reference docs/deploy.md"
    )
    unexplained = [
        name
        for name, info in Settings.model_fields.items()
        if not (info.description or MEANINGS.get(name))
    ]
    assert unexplained == [], "give these settings a Field(description=...)"


def test_the_baked_alerting_config_works_with_the_compose_environment(
    compose: dict[str, Any],
) -> None:
    """The notifier service passes every channel variable, empty unless .env sets it; the
    image's alerting.yaml must load like that (those channels stay off) and name no other."""
    notifier = _env(compose["services"]["notifier"])
    alerting = (ROOT / "alerting.yaml").read_text(encoding="utf-8")
    referenced = set(re.findall(r"\$\{(\w+)\}", re.sub(r"#.*", "", alerting)))
    assert referenced
    assert referenced <= set(notifier), referenced - set(notifier)
    env = {"PATH": "", **{name: "" for name in referenced}}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "validate", "alerting.yaml"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_alertmanager_receives_the_shipped_receiver_and_its_config_checks(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    url = _env(services["notifier"])["ALERTMANAGER_URL"]
    assert url.endswith("alertmanager://alertmanager:9093}"), url
    assert "alertmanager" in services and "9093" in str(services["alertmanager"]["ports"])
    shipped = _yaml(ROOT / "alerting.yaml")
    (receiver,) = [r for r in shipped["receivers"] if r["name"] == "alertmanager"]
    assert receiver["channels"] == ["${ALERTMANAGER_URL}"]
    amtool = shutil.which("amtool")
    assert amtool, "amtool is missing: `apt-get install prometheus-alertmanager` (.ci/run does)"
    config = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
    checked = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
