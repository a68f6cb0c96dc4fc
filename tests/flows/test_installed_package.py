"""An operator's machine: only the built package installed, not the repository (issue 14).

The wheel is built from a copy of what the package is made of (pyproject.toml, README.md,
trustanchor/; nothing else of the checkout, and nothing written into it), installed with pip into
a directory of its own, and run with that directory first on ``PYTHONPATH`` from a working
directory outside the checkout: the ``trustanchor`` console script the wheel installs, then
``init`` and ``serve`` in production mode, as the README and config/example.toml say, from one
configuration file (on PostgreSQL when it answers; on SQLite with paths relative to the file) or
from environment variables alone. The service must answer discovery and its JWKS over HTTP.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from support.server import REPO, free_port

pytestmark = pytest.mark.slow

ISSUER = "https://as.installed.example"
# Two different strong secrets (production refuses weak, example-looking or equal ones).
SECRETS = {
    "TRUSTANCHOR_SERVICE_PAIRWISE_SECRET": (
        "3f1c9a7be24d8056c1e9f0a3b7d25e84c6a1f09b3d7e2c58a4f6b1d0e9c3a725"
    ),
    "TRUSTANCHOR_SERVICE_COOKIE_SECRET": (
        "9b2e7d4a1c6f8035e2b9d7a4c1f6e8035b2a9d7c4e1f6a8305d2b9e7c4a1f6e8"
    ),
}
START_SECONDS = 60
# Where the package, its command line and its packaged defaults are imported and read from.
PROBE = """
import trustanchor, trustanchor.cli.main as cli
from importlib import resources
print(trustanchor.__file__, cli.__file__, resources.files("trustanchor.config") / "defaults.toml")
"""


@dataclass(frozen=True)
class Installed:
    site: Path  # what `pip install --target` wrote: the package and bin/trustanchor
    command: Path

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The machine's environment without any TRUSTANCHOR_* setting of the test run, the
        installed package first on the path."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTANCHOR_")}
        env.pop("PYTHONPATH", None)
        return {**env, "PYTHONPATH": str(self.site), "PYTHONUNBUFFERED": "1", **(extra or {})}

    def run(self, cwd: Path, *args: str, env: Mapping[str, str]) -> str:
        result = subprocess.run(
            [str(self.command), *args],
            cwd=cwd,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (
            f"trustanchor {' '.join(args)}:\n{result.stdout}{result.stderr}"
        )
        return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("installed")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "trustanchor", source / "trustanchor", ignore=shutil.ignore_patterns("__pycache__")
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    # --no-build-isolation: the build backend of the test environment (setuptools, from the
    # test extra), so nothing is downloaded; --no-index: nothing is looked up either.
    build = ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(work / "dist")]
    subprocess.run(
        [*pip, *build, str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = (work / "dist").glob("trustanchor-*.whl")
    site = work / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
    )
    shutil.rmtree(source)  # only the installed copy is left
    command = site / "bin" / "trustanchor"
    assert command.is_file()
    return Installed(site, command)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory outside the checkout, with no config/ beside it."""
    directory = tmp_path / "cwd"
    directory.mkdir()
    assert not directory.is_relative_to(REPO)
    return directory


def test_the_installed_package_is_what_runs_not_the_checkout(
    installed: Installed, elsewhere: Path
) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=elsewhere,
        env=installed.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    files = probe.stdout.split()
    assert len(files) == 3, probe.stdout + probe.stderr
    assert all(Path(file).is_relative_to(installed.site) for file in files), files
    helped = installed.run(elsewhere, "--help", env={})
    assert "serve" in helped and "clients" in helped
    assert "defaults shipped in the package" in " ".join(helped.split())


def example_config(**service: str | int) -> str:
    """config/example.toml with some [service] values replaced (each key appears once there)."""
    text = (REPO / "config" / "example.toml").read_text(encoding="utf-8")
    for key, value in service.items():
        literal = str(value) if isinstance(value, int) else f'"{value}"'
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {literal}", text, count=1)
        assert count == 1, f"{key} not in config/example.toml"
    return text


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_config_file_on_postgresql(
    installed: Installed, elsewhere: Path, tmp_path: Path, database_url: str
) -> None:
    """config/example.toml as an operator edits it: PostgreSQL (a fresh schema), keys in a
    directory of their own; the secrets in the environment."""
    port = free_port()
    config = tmp_path / "etc" / "trustanchor.toml"
    config.parent.mkdir()
    config.write_text(
        example_config(
            issuer=ISSUER, database_url=database_url, keys_dir=str(tmp_path / "keys"), port=port
        ),
        encoding="utf-8",
    )
    env = {**SECRETS, "TRUSTANCHOR_CONFIG": str(config)}
    assert f"ready: {ISSUER} (production mode)" in installed.run(elsewhere, "init", env=env)
    with serving(installed, elsewhere, env, port):
        answers_discovery(port)
    assert (tmp_path / "keys" / "signing").is_dir()


def test_one_config_file_on_sqlite_with_paths_relative_to_it(
    installed: Installed, elsewhere: Path, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "etc" / "trustanchor.toml"
    config.parent.mkdir()
    config.write_text(
        example_config(
            issuer=ISSUER, database_url="sqlite:///data/trustanchor.db", keys_dir="keys", port=port
        ),
        encoding="utf-8",
    )
    (config.parent / "data").mkdir()
    env = dict(SECRETS)
    installed.run(elsewhere, "--config", str(config), "init", env=env)
    with serving(installed, elsewhere, env, port, "--config", str(config)):
        answers_discovery(port)
    # Beside the file, not in the working directory.
    assert (config.parent / "data" / "trustanchor.db").is_file()
    assert (config.parent / "keys" / "signing").is_dir()
    assert list(elsewhere.iterdir()) == []


def test_environment_variables_alone(installed: Installed, elsewhere: Path) -> None:
    port = free_port()
    env = {
        **SECRETS,
        "TRUSTANCHOR_SERVICE_ISSUER": ISSUER,
        "TRUSTANCHOR_SERVICE_PORT": str(port),
        "TRUSTANCHOR_SERVICE_DATABASE_URL": "sqlite:///trustanchor.db",
        "TRUSTANCHOR_SERVICE_KEYS_DIR": "keys",
    }
    assert "(production mode)" in installed.run(elsewhere, "init", env=env)
    with serving(installed, elsewhere, env, port):
        answers_discovery(port)
    assert (elsewhere / "trustanchor.db").is_file()  # relative to the working directory


def serving(
    installed: Installed, cwd: Path, env: Mapping[str, str], port: int, *options: str
) -> _Serving:
    return _Serving(installed, cwd, env, port, options)


class _Serving:
    """``trustanchor [options] serve`` in a process group of its own, killed on the way out."""

    def __init__(
        self,
        installed: Installed,
        cwd: Path,
        env: Mapping[str, str],
        port: int,
        options: tuple[str, ...],
    ) -> None:
        self.args = [str(installed.command), *options, "serve", "--workers", "1"]
        self.cwd, self.env, self.port = cwd, installed.env(env), port
        self.log = cwd.parent / "serve.log"

    def __enter__(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.args,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")
            with suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{self.port}/jwks", timeout=2).ok:
                    return
            time.sleep(0.1)
        raise AssertionError(f"not serving in {START_SECONDS} s:\n{self.log.read_text()}")

    def __exit__(self, *exc: object) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def answers_discovery(port: int) -> None:
    answer = requests.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=5)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["issuer"] == ISSUER
    assert document["token_endpoint"] == ISSUER + "/token"
    keys = requests.get(f"http://127.0.0.1:{port}/jwks", timeout=5).json()["keys"]
    assert keys and all("d" not in key for key in keys)  # a production key, public part only


@pytest.fixture(autouse=True)
def _no_repository_config(elsewhere: Path) -> Iterator[None]:
    """Nothing the service reads may come from the checkout's config/."""
    assert not (elsewhere / "config").exists()
    yield
    assert not (elsewhere / "config").exists()
