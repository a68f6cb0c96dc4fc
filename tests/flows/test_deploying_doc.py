"""Issue 14: docs/DEPLOYING.md is true. Its runnable blocks are run, in order, as an operator
would, against a throwaway deployment (production mode, SQLite and PostgreSQL), with only the
substitutions the document lists in "How this document is tested"; the service is started from
the ``ExecStart`` of ``deploy/systemd/trustanchor.service`` and the timers' services are run from
their units too. Fails when a block exits non-zero, when a ``trustanchor`` command the document
names is run by no block or unit, or when a unit shown in the document differs from its file.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import requests
from support.ecosystem import Party
from support.races import client_assertion
from support.server import REPO, free_port

from trustanchor.cli.main import cli

DOC = REPO / "docs" / "DEPLOYING.md"
UNITS = REPO / "deploy" / "systemd"
AUDIT_CLIENT = "ops-audit-archive"
_BLOCK = re.compile(r"^([ \t]*)```([^\n]*)\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)
_COMMAND = re.compile(r"(?:(?<=/bin/)|(?<![\w/.=-]))trustanchor(?![\w./-])")
_TOKEN_STRIP = "`'\"()[],;:.|&"
BLOCK_TIMEOUT = 180


@dataclass(frozen=True)
class Block:
    language: str
    words: tuple[str, ...]
    body: str
    line: int

    @property
    def runnable(self) -> bool:
        return "deploy-test" in self.words

    def option(self, name: str) -> str | None:
        for word in self.words:
            if word.startswith(name + "="):
                return word.split("=", 1)[1]
        return None


def blocks(text: str) -> list[Block]:
    found = []
    for match in _BLOCK.finditer(text):
        indent, info, body = match.group(1), match.group(2).split(), match.group(3)
        body = "".join(
            row[len(indent) :] if row.startswith(indent) else row
            for row in body.splitlines(keepends=True)
        )
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(info[0] if info else "", tuple(info[1:]), body, line))
    return found


# --- which trustanchor commands a text names ---------------------------------------------------


def command_paths(text: str) -> set[tuple[str, ...]]:
    """Every ``trustanchor [--config FILE] SUB [SUB…]`` in ``text``, as the path of click
    (sub)commands it names (``("keys", "rotate")``); a bare ``trustanchor`` names nothing."""
    paths: set[tuple[str, ...]] = set()
    for match in _COMMAND.finditer(text):
        tokens = text[match.end() : match.end() + 200].split()
        command: click.Command = cli
        path: list[str] = []
        index = 0
        while index < len(tokens) and isinstance(command, click.Group):
            token = tokens[index].strip(_TOKEN_STRIP)
            if token == "--config" and not path:
                index += 2
                continue
            sub = command.commands.get(token)
            if sub is None:
                break
            path.append(token)
            command = sub
            index += 1
        if path:
            paths.add(tuple(path))
    return paths


def _without_comments(script: str) -> str:
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in script.splitlines())


# --- units -------------------------------------------------------------------------------------


def unit_service(name: str) -> Mapping[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name, encoding="utf-8")
    return dict(parser["Service"])


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


# --- the deployment under test -----------------------------------------------------------------


class Deployment:
    def __init__(self, root: Path, database_url: str, dialect: str) -> None:
        self.root = root
        self.dialect = dialect
        self.port = free_port()
        venv = Path(sys.executable).parent.parent
        self.substitutions = [
            ("/etc/trustanchor", str(root / "etc")),
            ("/var/lib/trustanchor", str(root / "lib")),
            ("/var/backups/trustanchor", str(root / "backups")),
            ("/opt/trustanchor", str(venv)),
            ("127.0.0.1:8000", f"127.0.0.1:{self.port}"),
        ]
        (root / "lib").mkdir()
        self.database_url = (
            f"sqlite:///{root / 'lib' / 'trustanchor.db'}" if dialect == "sqlite" else database_url
        )
        self.overrides = {
            "TRUSTANCHOR_SERVICE_DATABASE_URL": self.database_url,
            "TRUSTANCHOR_SERVICE_PORT": str(self.port),
            "TRUSTANCHOR_SERVICE_WORKERS": "2",
        }
        self.session: list[str] = []
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log = root / "serve.log"
        self.auditor = Party(AUDIT_CLIENT)
        self.issuer = ""
        self.audit_token: str | None = None
        self.ran: list[str] = []

    def sub(self, text: str) -> str:
        for old, new in self.substitutions:
            text = text.replace(old, new)
        return text

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTANCHOR_")}
        env.update(self.overrides)
        return env

    # the operator's steps

    def write_file(self, block: Block, path: str) -> None:
        target = Path(self.sub(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.sub(block.body), encoding="utf-8")
        if target.suffix == ".toml":
            self.issuer = tomllib.loads(block.body)["service"]["issuer"]
            # The monitoring job's key pair: its public JWKS where the declaration names it.
            jwks = target.parent / "clients" / f"{AUDIT_CLIENT}.jwks.json"
            jwks.parent.mkdir(parents=True, exist_ok=True)
            jwks.write_text(json.dumps(self.auditor.jwks), encoding="utf-8")

    def run_block(self, block: Block) -> None:
        script = self.sub(block.body)
        env = self.base_env()
        if "AUDIT_TOKEN" in script:
            env["AUDIT_TOKEN"] = self.token()
        full = "\n".join([*self.session, script])
        result = subprocess.run(
            ["bash", "-e", "-u", "-o", "pipefail", "-c", full],
            env=env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, (
            f"docs/DEPLOYING.md line {block.line}: exit {result.returncode}\n{script}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n"
            f"--- server log\n{self._log_tail()}"
        )
        self.ran.append(block.body)

    def unit_command(self, name: str) -> tuple[list[str], dict[str, str], Path]:
        service = unit_service(name)
        command = shlex.split(self.sub(service["ExecStart"]))
        env = self.base_env()
        env.update(env_file(Path(self.sub(service["EnvironmentFile"]))))
        env.update(self.overrides)  # the documented substitutions win over the file
        cwd = Path(self.sub(service["WorkingDirectory"]))
        self.ran.append(service["ExecStart"])
        return command, env, cwd

    def run_unit(self, name: str) -> None:
        command, env, cwd = self.unit_command(name)
        result = subprocess.run(
            command,
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, f"{name}: exit {result.returncode}\n{result.stderr}"

    def start(self) -> None:
        if self.server is not None:
            return
        command, env, cwd = self.unit_command("trustanchor.service")
        with self.server_log.open("ab") as log:
            self.server = subprocess.Popen(
                command, env=env, cwd=cwd, stdout=log, stderr=log, start_new_session=True
            )
        url = f"http://127.0.0.1:{self.port}/.well-known/openid-configuration"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                pytest.fail(
                    f"trustanchor serve exited {self.server.returncode}\n{self._log_tail()}"
                )
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        pytest.fail(f"trustanchor serve did not answer within 60 s\n{self._log_tail()}")

    def stop(self) -> None:
        server, self.server = self.server, None
        self.audit_token = None
        if server is None:
            return
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        except ProcessLookupError:
            pass

    def token(self) -> str:
        """The monitoring job's client_credentials token with the audit scope."""
        assert self.server is not None, "a block using $AUDIT_TOKEN needs server=up"
        if self.audit_token is None:
            response = requests.post(
                f"http://127.0.0.1:{self.port}/token",
                data={
                    "grant_type": "client_credentials",
                    "scope": "audit",
                    "client_id": AUDIT_CLIENT,
                    "client_assertion_type": (
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                    ),
                    "client_assertion": client_assertion(self.auditor, self.issuer),
                },
                timeout=10,
            )
            assert response.status_code == 200, response.text
            self.audit_token = str(response.json()["access_token"])
        return self.audit_token

    def checkpoint_size(self) -> int:
        response = requests.get(
            f"http://127.0.0.1:{self.port}/audit/checkpoint?format=json",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return int(response.json()["size"])

    def auditor_keeps_a_newer_checkpoint(self) -> Path:
        """After the backup: the service goes on (three more tokens), and an auditor keeps a
        checkpoint the backup does not reach."""
        before = self.checkpoint_size()
        for _ in range(3):
            self.audit_token = None
            self.token()
        deadline = time.monotonic() + 30
        while self.checkpoint_size() < before + 3:
            assert time.monotonic() < deadline, "no checkpoint covered the new tokens"
            time.sleep(0.2)
        kept = self.root / "auditor"
        self.cli(
            "audit",
            "fetch",
            "--url",
            self.url,
            "--token",
            self.token(),
            "--no-entries",
            "--out",
            str(kept),
        )
        return kept / "checkpoint.txt"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        env = self.base_env()
        env.update(env_file(self.root / "etc" / "trustanchor.env"))
        result = subprocess.run(
            [str(Path(sys.executable).parent / "trustanchor"), *args],
            env=env,
            cwd=self.root / "lib",
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        assert result.returncode == expect, (
            f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        return result

    def _log_tail(self) -> str:
        if not self.server_log.exists():
            return "(no server log)"
        return self.server_log.read_text(encoding="utf-8", errors="replace")[-4000:]


# The tools the document's blocks use besides trustanchor, with the Debian package of each.
TOOLS = {"bash": "bash", "openssl": "openssl", "sqlite3": "sqlite3", "curl": "curl", "tar": "tar"}


@pytest.fixture
def deployment(tmp_path: Path, database_url: str) -> Iterator[Deployment]:
    missing = sorted(pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None)
    if missing:
        # A machine with only Python and git runs the suite without them (./scripts/test);
        # .ci/run installs them and sets TRUSTANCHOR_REQUIRE_DEPLOY_TOOLS, so CI never skips.
        needs = f"docs/DEPLOYING.md needs them: apt-get install -y {' '.join(missing)}"
        if os.environ.get("TRUSTANCHOR_REQUIRE_DEPLOY_TOOLS"):
            pytest.fail(needs)
        pytest.skip(needs)
    dialect = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    deployment = Deployment(tmp_path, database_url, dialect)
    try:
        yield deployment
    finally:
        deployment.stop()


def test_every_runnable_block_of_deploying_md_succeeds(deployment: Deployment) -> None:
    runnable = [b for b in blocks(DOC.read_text(encoding="utf-8")) if b.runnable]
    auditors_checkpoint = Path()
    assert len(runnable) >= 10, "the runnable blocks were not found"
    for block in runnable:
        if "sqlite" in block.words and deployment.dialect != "sqlite":
            continue
        server = block.option("server")
        if server == "up":
            deployment.start()
        elif server == "down":
            deployment.stop()
        path = block.option("file")
        if path is not None:
            deployment.write_file(block, path)
        elif "session" in block.words:
            deployment.session.append(deployment.sub(block.body))
            deployment.run_block(block)
        else:
            for _ in range(2 if "scheduled" in block.words else 1):
                deployment.run_block(block)
        if ".backup" in block.body:
            auditors_checkpoint = deployment.auditor_keeps_a_newer_checkpoint()
    if deployment.dialect == "sqlite":
        # The document's warning, shown: the restored log is consistent with the checkpoint
        # archived before the backup (the block above), but an auditor who kept a checkpoint
        # signed after the backup sees the log shrink.
        deployment.start()
        refused = deployment.cli(
            "audit",
            "check",
            "--since",
            str(auditors_checkpoint),
            "--url",
            deployment.url,
            "--token",
            deployment.token(),
            expect=2,
        )
        assert "ROLLBACK" in refused.stderr + refused.stdout, refused
    deployment.stop()
    # What the timers start, as their units start it.
    deployment.run_unit("trustanchor-purge.service")
    deployment.run_unit("trustanchor-check-status.service")
    ran = command_paths(_without_comments("\n".join(deployment.ran)))
    assert {("init",), ("serve",), ("purge",), ("identities", "check-status")} <= ran


def test_every_trustanchor_command_named_in_deploying_md_is_run() -> None:
    text = DOC.read_text(encoding="utf-8")
    named = command_paths(text)
    runnable = [b.body for b in blocks(text) if b.runnable and b.option("file") is None]
    execs = [unit_service(p.name)["ExecStart"] for p in sorted(UNITS.glob("*.service"))]
    run = command_paths(_without_comments("\n".join([*runnable, *execs])))
    assert len(named) >= 8, named
    missing = sorted(
        " ".join(path) for path in named if not any(r[: len(path)] == path for r in run)
    )
    assert not missing, f"named in docs/DEPLOYING.md but run by no block or unit: {missing}"


def test_the_units_shown_in_deploying_md_are_the_files() -> None:
    shown = {
        b.option("file"): b.body
        for b in blocks(DOC.read_text(encoding="utf-8"))
        if b.language == "ini"
    }
    files = {f"deploy/systemd/{p.name}": p.read_text(encoding="utf-8") for p in UNITS.iterdir()}
    assert set(shown) == set(files), "every unit file is shown once, and nothing else"
    for path, body in files.items():
        assert shown[path] == body, f"docs/DEPLOYING.md shows an outdated {path}"


def test_the_command_finder_reads_the_shapes_the_document_uses() -> None:
    text = (
        "/opt/trustanchor/bin/trustanchor purge\n`trustanchor keys rotate --immediately`\n"
        "trustanchor --config /etc/x.toml audit check --since f\n"
        "the trustanchor user; /var/lib/trustanchor/keys; trustanchor/storage/audit_tree.py\n"
        "User=trustanchor\ntrustanchor identities check-status --limit 1000\n"
        "trustanchor --version\n"
    )
    assert command_paths(text) == {
        ("purge",),
        ("keys", "rotate"),
        ("audit", "check"),
        ("identities", "check-status"),
    }
