"""The production container's contract (issue 14 item 7): a non-root user, a read-only root
filesystem, the schema migrated in a separate step, workers serving; and the deployment
examples (Dockerfile, deploy/compose.yaml, deploy/kubernetes/) agreeing with the code.

No image is built here (this machine reaches no container registry). What the image relies
on is run instead: `idp migrate` and `idp serve --workers 2` as user 10001 in a mount
namespace whose root filesystem is read-only, with one writable directory as the volume."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from idp.cli import build_parser
from idp.settings import Settings
from idp.store import migrate
from tests.conftest import TEST_SECRET
from tests.helpers import kill_group, throwaway_database, wait_until_ready
from tests.receiver import free_port

ROOT = Path(__file__).resolve().parent.parent
IDP = Path(sys.executable).parent / "idp"
APP_UID = 10001
TMP = "/tmp"  # noqa: S108 - the container's scratch mount, not a file made here
VOLUME = "/mnt/volume"  # where `container` mounts the volume


def dockerfile_final_stage() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile's last stage, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages[-1]


def dockerfile_env() -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction, arguments in dockerfile_final_stage():
        if instruction == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def kubernetes() -> dict[str, dict[str, Any]]:
    documents = yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "idp.yaml").read_text())
    return {document["kind"]: document for document in documents}


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text()))


def assert_cli_accepts(command: list[str]) -> None:
    assert command[0] == "idp"
    build_parser().parse_args(command[1:])  # exits (SystemExit) on an unknown option


def test_the_image_runs_as_a_non_root_user_and_never_migrates_on_start() -> None:
    stage = dockerfile_final_stage()
    users = [arguments for instruction, arguments in stage if instruction == "USER"]
    assert users == [f"{APP_UID}:{APP_UID}"]  # numeric: runAsNonRoot can check it
    env = dockerfile_env()
    assert env["IDP_MIGRATE_ON_START"] == "false"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    (cmd,) = [json.loads(arguments) for instruction, arguments in stage if instruction == "CMD"]
    assert cmd[:2] == ["idp", "serve"] and "--workers" in cmd
    assert_cli_accepts(cmd)


def test_every_setting_the_examples_name_exists_and_validates(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt IDP_ variable is silently ignored by the service: the examples must name
    only real settings, with values the settings accept."""
    fields = {f"IDP_{name.upper()}" for name in Settings.model_fields}
    config_map = kubernetes()["ConfigMap"]["data"]
    compose_env = compose()["x-idp-environment"]
    secret_names = {"IDP_KEY_ENCRYPTION_SECRET", "IDP_DATABASE_URL"}  # `kubectl create secret`
    named = set(config_map) | set(compose_env) | secret_names | {
        key for key in dockerfile_env() if key.startswith("IDP_")}
    assert named <= fields, named - fields
    assert "--from-literal=IDP_KEY_ENCRYPTION_SECRET" in (
        ROOT / "deploy" / "kubernetes" / "idp.yaml").read_text()
    # Read from the environment, as the service reads them.
    for key in [key for key in os.environ if key.startswith("IDP_")]:
        monkeypatch.delenv(key)
    for key, value in {**dockerfile_env(), **config_map}.items():
        if key.startswith("IDP_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("IDP_KEY_ENCRYPTION_SECRET", TEST_SECRET)
    settings = Settings()
    assert settings.trusted_proxies == ("10.0.0.0/8",)
    assert settings.migrate_on_start is False
    assert settings.issuer.startswith("https://")


def test_compose_migrates_first_then_serves_read_only() -> None:
    services = compose()["services"]
    migrate_service, server = services["migrate"], services["idp"]
    assert migrate_service["command"] == ["idp", "migrate"]
    assert server["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert migrate_service["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pg_isready" in services["db"]["healthcheck"]["test"]
    for service in (migrate_service, server):
        assert service["read_only"] is True
        assert service["user"] == f"{APP_UID}:{APP_UID}"
    assert server["tmpfs"] == [TMP]
    assert server["cap_drop"] == ["ALL"]
    assert_cli_accepts(server["command"])


def test_kubernetes_migrates_in_a_job_and_probes_what_the_server_answers() -> None:
    objects = kubernetes()
    job = objects["Job"]["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["idp", "migrate"]
    # One Job per release's schema: its name carries the last migration.
    head = migrate.alembic_config("sqlite://").get_main_option("script_location")
    assert head is not None
    latest = sorted(p.name[:4] for p in Path(head).glob("versions/0*.py"))[-1]
    assert objects["Job"]["metadata"]["name"] == f"idp-migrate-{latest}"
    deployment = objects["Deployment"]["spec"]["template"]["spec"]
    for pod in (job, deployment):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == APP_UID
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            refs = {ref.get("secretRef", {}).get("name") for ref in container["envFrom"]}
            assert "idp" in refs
    (server,) = deployment["containers"]
    assert_cli_accepts(server["command"])
    assert server["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/health/live"
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["volumes"]}
    assert "emptyDir" in volumes[mounts[TMP]]
    # Drain, then in-flight requests (10 s), within the grace period.
    drain = Settings.model_fields["shutdown_drain_seconds"].default
    assert deployment["terminationGracePeriodSeconds"] >= drain + 10 + 5


def test_serve_refuses_a_database_that_lacks_its_migrations(tmp_path: Path) -> None:
    with throwaway_database(tmp_path) as url:
        env = _env(url, tmp_path, IDP_MIGRATE_ON_START="false")
        refused = subprocess.run([str(IDP), "serve", "--port", str(free_port())], env=env,
                                 capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode == 1
        assert "run `idp migrate` (to" in refused.stderr
        assert migrate.schema_problem(url) is not None  # nothing was changed
        migrate.upgrade(url, "0013")
        refused = subprocess.run([str(IDP), "serve", "--port", str(free_port())], env=env,
                                 capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode == 1
        assert "schema is at 0013" in refused.stderr


def _env(url: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PROMETHEUS"))}
    env.update(IDP_DATABASE_URL=url, IDP_ISSUER="http://127.0.0.1:8000",
               IDP_KEY_ENCRYPTION_SECRET=TEST_SECRET, IDP_LOG_LEVEL="WARNING",
               IDP_SHUTDOWN_DRAIN_SECONDS="1", HOME="/nonexistent",
               PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(home))
    env.update(extra)
    return env


def _namespaces_work() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("setpriv") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True, check=False)
    return probe.returncode == 0


CONTAINER = r"""
set -e
volume="$1"; shift
# The volume, at a path the app user can reach; nothing else will be writable.
mount -t tmpfs -o mode=755,size=1m tmpfs /mnt
mkdir /mnt/volume /mnt/python
mount --bind "$volume" /mnt/volume
# The interpreter must be readable by the app user, as it is in the image.
base="$(dirname "$(dirname "$(readlink -f "$PYTHON")")")"
case "$base" in /root/*)
  mount --bind "$base" /mnt/python
  mount -t tmpfs -o mode=755,size=1m tmpfs /root
  mkdir -p "$base"; mount --bind /mnt/python "$base";;
esac
mount -o remount,bind,ro /
cd /mnt/volume
exec setpriv --reuid {uid} --regid {uid} --clear-groups --inh-caps=-all \
  --bounding-set=-all --no-new-privs "$@"
"""
def container(volume: Path, *command: str) -> list[str]:
    """`command` as the image runs it: user 10001, no capabilities, the root filesystem
    read-only, `volume` (at VOLUME) the only writable directory."""
    script = CONTAINER.replace("{uid}", str(APP_UID))
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "container",
            str(volume), *command]


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "scratch").mkdir()
    os.chown(tmp_path, APP_UID, APP_UID)
    os.chown(tmp_path / "scratch", APP_UID, APP_UID)
    yield tmp_path


@pytest.mark.skipif(not _namespaces_work(), reason="needs root and mount namespaces")
@pytest.mark.skipif(not os.environ.get("IDP_TEST_DATABASE_URL"),
                    reason="runs on the PostgreSQL pass, the production database (CI time)")
def test_the_container_contract_holds_read_only_and_unprivileged(volume: Path) -> None:
    with throwaway_database(volume) as url:
        if url.startswith("sqlite"):
            # The database file is created by the migration step, as the app user.
            url = f"sqlite+aiosqlite:///{VOLUME}/idp.db"
        port = free_port()
        env = _env(url, volume, IDP_MIGRATE_ON_START="false", TMPDIR=f"{VOLUME}/scratch",
                   IDP_ISSUER=f"http://127.0.0.1:{port}", PYTHON=sys.executable)
        # Nothing outside the volume can be written, even by the command that tries.
        probe = subprocess.run(container(volume, "sh", "-c", f"id -u; touch {ROOT}/x"),
                               env=env, capture_output=True, text=True, timeout=30, check=False)
        assert probe.stdout.strip() == str(APP_UID)
        assert "Read-only file system" in probe.stderr and not (ROOT / "x").exists()

        step = subprocess.run(container(volume, str(IDP), "migrate"), env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert step.returncode == 0, step.stderr
        assert "database migrated to head" in step.stdout
        assert "generated signing keys" in step.stdout
        admin = subprocess.run(container(volume, str(IDP), "admin", "bootstrap", "--json"),
                               env=env, capture_output=True, text=True, timeout=60, check=False)
        assert admin.returncode == 0, admin.stderr
        credentials = json.loads(admin.stdout)

        server = subprocess.Popen(
            container(volume, str(IDP), "serve", "--host", "127.0.0.1", "--port", str(port),
                      "--workers", "2"),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)  # a group: killed outright, its workers go with it
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                wait_until_ready(http, server)
                token = http.post("/token", data={"grant_type": "client_credentials"},
                                  auth=(credentials["client_id"], credentials["client_secret"]))
                assert token.status_code == 200, token.text
                listed = http.get("/admin/v1/clients", headers={
                    "Authorization": f"Bearer {token.json()['access_token']}"})
                assert listed.status_code == 200
                scraped = http.get("/metrics").text  # the workers' files under TMPDIR
                assert 'idp_token_requests_total{grant_type="client_credentials"' in scraped
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0
            out = (server.stdout.read() if server.stdout else "")
            # Migrated and keyed by the separate step: the server changed nothing.
            assert "generated signing keys" not in out
        finally:
            kill_group(server)
