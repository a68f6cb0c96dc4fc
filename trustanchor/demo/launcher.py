"""``python -m trustanchor.demo``: the whole demo on one machine.

1. refuse unless the configuration is in demo mode;
2. prepare the demo keys and credentials (``trustanchor.demo.prepare``);
3. ``trustanchor init`` for the service (secrets, signing key, schema, declarations);
4. start the service (``trustanchor serve``) and the demo parties' app (wallet, bank, ledger,
   under granian) as child processes, each in its own process group;
5. wait until both answer, seed the demo data (:func:`seed`), print the URLs;
6. supervise: Ctrl-C / SIGTERM, or one child exiting, stops both (exit status 1 if a child
   died, 0 after a signal).

Ports flow from the arguments to both processes: the service gets ``TRUSTANCHOR_SERVICE_ISSUER``,
``TRUSTANCHOR_SERVICE_PORT``, ``TRUSTANCHOR_INTERACTION_WALLET_LINK_BASE``,
``TRUSTANCHOR_INTERACTION_CERTIFICATE_LINK_BASE`` and ``TRUSTANCHOR_DEMO_PARTIES_URL``; the
parties get their origin and the service's through ``DEMO_PARTIES_*``. When the demo bank's
redirect URI in the configuration is not ``<parties>/bank/callback`` (other ports), a derived
copy of the configuration is written under the state directory and used instead (the branch
counter's redirect URI and the demo JPKI CA's CRL URLs moved to the parties' origin too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from trustanchor.config import ConfigError, Settings, load_settings
from trustanchor.config.loader import defaults_text, sqlite_url_against
from trustanchor.demo import parties_app
from trustanchor.demo.bank.client import (
    CALLBACK_PATH,
    CLIENT_ID,
    AuthorizationRefused,
    BankClientError,
)
from trustanchor.demo.branch import BRANCH_CLIENT_ID
from trustanchor.demo.branch import CALLBACK_PATH as BRANCH_CALLBACK_PATH
from trustanchor.demo.ekyc_op import ANCHOR_ID as EKYC_ANCHOR_ID
from trustanchor.demo.ekyc_op import ISSUER_PATH as EKYC_ISSUER_PATH
from trustanchor.demo.people import Person
from trustanchor.demo.site import DemoSite
from trustanchor.log_setup import dictconfig

DEFAULT_CONFIG = "config/demo.toml"
DEFAULT_STATE_DIR = Path("var/demo")
DERIVED_CONFIG = "demo-derived.toml"
WALLET_AUTHORIZE_PATH = "/wallet/authorize"
CARD_AUTHORIZE_PATH = "/card/authorize"  # the demo phone's My Number Card app (card_pages.py)
JPKI_PATH = "/jpki/"  # the demo JPKI CA's CRLs on the parties' origin
# The service settings the launcher sets through the environment: variable -> (section, key).
ENV_SETTINGS = {
    "TRUSTANCHOR_SERVICE_ISSUER": ("service", "issuer"),
    "TRUSTANCHOR_SERVICE_PORT": ("service", "port"),
    "TRUSTANCHOR_SERVICE_HOST": ("service", "host"),
    "TRUSTANCHOR_SERVICE_DATABASE_URL": ("service", "database_url"),
    "TRUSTANCHOR_INTERACTION_WALLET_LINK_BASE": ("interaction", "wallet_link_base"),
    "TRUSTANCHOR_INTERACTION_CERTIFICATE_LINK_BASE": ("interaction", "certificate_link_base"),
    "TRUSTANCHOR_DEMO_PARTIES_URL": ("demo", "parties_url"),
}
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
PARTIES_THREADS = 8


class LaunchError(Exception):
    """The demo cannot start; the message says what to do. ``status``: the exit status (2 for
    a configuration the demo refuses, 1 otherwise)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Plan:
    config: Path  # the configuration the service runs with (maybe a derived copy)
    settings: Settings
    site: DemoSite
    service_port: int
    parties_port: int
    service_env: dict[str, str]
    parties_env: dict[str, str]


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


# -- planning -------------------------------------------------------------------------------------


def make_plan(config: Path, service_port: int, parties_port: int, state_dir: Path | None) -> Plan:
    """Read the configuration and work out URLs, files and environments (nothing started)."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise LaunchError(f"{exc}\nfix {config} and start again", status=2) from exc
    if settings.service.mode != "demo":
        raise LaunchError(
            f"{config} is in {settings.service.mode!r} mode: the demo runs only with "
            'service.mode = "demo" (use config/demo.toml)',
            status=2,
        )
    service_url = f"http://{HOST}:{service_port}"
    parties_url = f"http://{HOST}:{parties_port}"
    state = state_dir if state_dir is not None else DEFAULT_STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    service_env = {
        "TRUSTANCHOR_SERVICE_ISSUER": service_url,
        "TRUSTANCHOR_SERVICE_PORT": str(service_port),
        "TRUSTANCHOR_SERVICE_HOST": HOST,
        "TRUSTANCHOR_INTERACTION_WALLET_LINK_BASE": parties_url + WALLET_AUTHORIZE_PATH,
        "TRUSTANCHOR_INTERACTION_CERTIFICATE_LINK_BASE": parties_url + CARD_AUTHORIZE_PATH,
        "TRUSTANCHOR_DEMO_PARTIES_URL": parties_url,
    }
    if state_dir is not None:
        service_env["TRUSTANCHOR_SERVICE_DATABASE_URL"] = (
            f"sqlite:///{(state_dir / 'trustanchor.db').resolve()}"
        )
    redirect_uri = parties_url + CALLBACK_PATH
    if _bank_redirects(settings) != [redirect_uri]:
        config = derive_config(config, state, redirect_uri, service_env)
        try:
            settings = load_settings(config, environ={**os.environ, **service_env})
        except ConfigError as exc:
            raise LaunchError(f"the derived configuration {config} is not valid: {exc}") from exc
    site = DemoSite(
        service_url=service_url,
        parties_url=parties_url,
        keys_dir=Path(settings.service.keys_dir),
        state_dir=state,
    )
    parties_env = {
        parties_app.ENV_SERVICE_URL: service_url,
        parties_app.ENV_PARTIES_URL: parties_url,
        parties_app.ENV_KEYS_DIR: str(site.keys_dir.resolve()),
        parties_app.ENV_STATE_DIR: str(state.resolve()),
    }
    return Plan(config, settings, site, service_port, parties_port, service_env, parties_env)


def _bank_redirects(settings: Settings) -> list[str]:
    for client in settings.clients:
        if client.get("client_id") == CLIENT_ID:
            return list(client.get("redirect_uris", []))
    raise LaunchError(f"the configuration declares no {CLIENT_ID} client")


def derive_config(
    config: Path, state_dir: Path, redirect_uri: str, environment: Mapping[str, str]
) -> Path:
    """A copy of ``config`` under ``state_dir`` with the demo bank's redirect URI replaced, the
    settings of ``environment`` (``TRUSTANCHOR_<SECTION>_<KEY>``, also passed to the service)
    written in, and relative file references (``*_file``, ``service.keys_dir``, a SQLite
    ``service.database_url``) made absolute against the original's directory, as the loader
    resolves them, since the copy lives elsewhere."""
    with config.open("rb") as fh:
        raw = tomllib.load(fh)
    for name, value in environment.items():
        section, key = ENV_SETTINGS[name]
        raw.setdefault(section, {})[key] = int(value) if key == "port" else value
    base = config.parent.resolve()
    service = raw.setdefault("service", {})
    defaults = tomllib.loads(defaults_text())["service"]
    service["keys_dir"] = os.path.normpath(base / service.get("keys_dir", defaults["keys_dir"]))
    service["database_url"] = sqlite_url_against(
        service.get("database_url", defaults["database_url"]), base
    )
    raw["include"] = [str((base / name).resolve()) for name in raw.get("include", [])]
    if not raw["include"]:
        del raw["include"]
    for kind in ("anchors", "clients"):
        for declaration in raw.get(kind, []):
            _absolute_files(declaration, base)
    parties = redirect_uri.removesuffix(CALLBACK_PATH)
    for client in raw.get("clients", []):
        if client.get("client_id") == CLIENT_ID:
            client["redirect_uris"] = [redirect_uri]
            # "Sign out everywhere" returns to the bank's home page on the same origin.
            client["post_logout_redirect_uris"] = [parties + "/bank/"]
        elif client.get("client_id") == BRANCH_CLIENT_ID:
            client["redirect_uris"] = [parties + BRANCH_CALLBACK_PATH]
    for anchor in raw.get("anchors", []):  # the demo CA's CRLs are on the parties' origin
        revocation = anchor.get("x509", {}).get("revocation", {})
        if isinstance(revocation.get("crl_urls"), list):
            revocation["crl_urls"] = [_on_parties(url, parties) for url in revocation["crl_urls"]]
    for anchor in raw.get("anchors", []):  # the demo eKYC bank's provider: on the parties' origin
        if anchor.get("id") == EKYC_ANCHOR_ID and isinstance(anchor.get("oidc"), dict):
            parties_url = redirect_uri.removesuffix(CALLBACK_PATH)
            anchor["oidc"]["issuer"] = parties_url + EKYC_ISSUER_PATH
    target = state_dir / DERIVED_CONFIG
    header = (
        f"# Written by python -m trustanchor.demo from {config} (other ports); do not edit,\n"
        "# it is written again at every start.\n"
    )
    target.write_text(header + dump_toml(raw), encoding="utf-8")
    return target


def _on_parties(url: str, parties: str) -> str:
    """A URL of the demo JPKI CA (``/jpki/...``) moved to the parties' origin; others kept."""
    path = url.split("://", 1)[-1].partition("/")[2]
    return f"{parties}/{path}" if ("/" + path).startswith(JPKI_PATH) else url


def _absolute_files(table: dict[str, Any], base: Path) -> None:
    for key, value in table.items():
        if isinstance(value, dict):
            _absolute_files(value, base)
        elif key.endswith("_file") and isinstance(value, str) and not Path(value).is_absolute():
            table[key] = str((base / value).resolve())


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        members = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + members + " }" if members else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dump_toml(data: Mapping[str, Any]) -> str:
    """TOML for a configuration: top-level scalars, tables, arrays of tables; everything
    nested below them as inline values."""
    lines: list[str] = []
    for key, value in data.items():
        if not isinstance(value, dict) and not _table_array(value):
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{_toml_key(key)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
        elif _table_array(value):
            for item in value:
                lines.append(f"\n[[{_toml_key(key)}]]")
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    def exited(self) -> bool:
        return self.process.poll() is not None


def check_port_free(port: int, what: str, option: str) -> None:
    with socket.socket() as sock:
        # As servers bind: a port whose old connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise LaunchError(
                f"port {port} ({what}) is in use: stop whatever listens there, or start the "
                f"demo with {option} <another port>"
            ) from exc


def run_step(what: str, command: Sequence[str], env: Mapping[str, str]) -> None:
    say(what)
    completed = subprocess.run(command, env={**os.environ, **env}, check=False)  # noqa: S603
    if completed.returncode != 0:
        raise LaunchError(f"{what} failed (exit status {completed.returncode}); see above")


def start(name: str, command: Sequence[str], env: Mapping[str, str]) -> Child:
    """A child in its own session and process group (stopped as a group)."""
    process = subprocess.Popen(  # noqa: S603
        list(command), env={**os.environ, **env}, start_new_session=True
    )
    return Child(name, process)


def stop(children: Sequence[Child]) -> None:
    """SIGTERM to each child's process group, SIGKILL after STOP_TIMEOUT seconds."""
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.process.wait(timeout=5)


def _signal_group(child: Child, sig: signal.Signals) -> None:
    if child.exited():
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.process.pid, sig)  # the child leads its own group (start_new_session)


def wait_until_answering(
    urls: Mapping[str, str],
    children: Sequence[Child],
    stopping: Callable[[], bool],
    timeout: float = START_TIMEOUT,
) -> None:
    """Until every URL answers 200 (or a stop was asked for); a child exiting meanwhile, or
    ``timeout`` seconds passing, is a :class:`LaunchError`."""
    deadline = time.monotonic() + timeout
    waiting = dict(urls)
    while waiting and not stopping():
        for child in children:
            if child.exited():
                raise LaunchError(
                    f"{child.name} exited with status {child.process.returncode} while "
                    "starting; see its messages above"
                )
        for what, url in list(waiting.items()):
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    say(f"{what} answers at {url}")
                    del waiting[what]
            except requests.RequestException:
                pass
        if waiting and time.monotonic() > deadline:
            raise LaunchError(f"{', '.join(waiting)} did not answer within {timeout:.0f} s")
        if waiting:
            time.sleep(0.2)


# -- seeding --------------------------------------------------------------------------------------


def seed(demo: Plan) -> None:
    """Demo data through the real interfaces, once both processes answer."""
    seed_bank_accounts(demo.site)
    seed_links(demo.site)
    seed_auditors(demo)


def seed_bank_accounts(site: DemoSite) -> None:
    """The demo bank registers every demo person's accounts at the service (``POST /accounts``
    with a client_credentials token, DPoP-bound) and opens their CBDC wallets at the ledger."""
    from trustanchor.demo.branch import open_branch
    from trustanchor.demo.parties_state import open_bank, parties_engine

    engine = parties_engine(site.state_dir)
    try:
        desk, _ledger = open_bank(site, engine)
        for message in desk.register_accounts() or ["accounts already registered"]:
            say(f"bank: {message}")
        counter = open_branch(site, desk.store, desk.book)  # its own client, its own accounts
        for message in counter.register_accounts() or ["accounts already registered"]:
            say(f"branch counter: {message}")
    except BankClientError as exc:
        raise LaunchError(f"registering the demo bank's accounts failed: {exc}") from exc
    finally:
        engine.dispose()


def seed_links(site: DemoSite) -> None:
    """Link the deposit account and CBDC wallet of every person marked ``linked_at_start``
    (Taro, inside Hanako's anchor set; Erika, outside it) through the real flow: the bank's PAR
    with an ``account_link`` detail, the person's login with their demo wallet and their
    approval at the service's pages (:mod:`trustanchor.demo.autopilot`), the bank's code
    exchange. Skipped for a person whose link is already active (a restart)."""
    from trustanchor.demo.autopilot import AutopilotError, approve_at_service
    from trustanchor.demo.parties_state import open_bank, parties_engine

    engine = parties_engine(site.state_dir)
    try:
        desk, _ledger = open_bank(site, engine)
        for person in desk.people:
            if not person.linked_at_start:
                continue
            if desk.active_link(person) is not None:
                say(f"bank: {person.id}'s accounts are linked already")
                continue

            def approve(url: str, person: Person = person) -> str:
                return approve_at_service(site, person, url)

            desk.link_accounts(person, approve)
            say(f"bank: linked {person.id}'s deposit account and CBDC wallet (through the service)")
    except (AutopilotError, AuthorizationRefused, BankClientError) as exc:
        raise LaunchError(f"linking the demo payees' accounts failed: {exc}") from exc
    finally:
        engine.dispose()


def seed_auditors(demo: Plan) -> None:
    """Designate every person marked ``auditor`` as an auditor of the service, the way an
    operator would: the person logs in to the auditor console once (with their demo wallet, at
    the service's pages) and is shown their auditor reference; the operator designates that
    reference with ``trustanchor auditors add``. A person the console already lets in (a
    restart) is left as they are."""
    from trustanchor.demo.autopilot import AutopilotError, auditor_reference_of
    from trustanchor.demo.people import load_people

    for person in load_people():
        if not person.auditor:
            continue
        try:
            reference = auditor_reference_of(demo.site, person)
        except AutopilotError as exc:
            raise LaunchError(f"{person.id}'s first login to the auditor console: {exc}") from exc
        if reference is None:
            say(f"{person.id} is an auditor already")
            continue
        label = f"{person.display_name.en} (demo)"
        command = [sys.executable, "-m", "trustanchor", "--config", str(demo.config)]
        run_step(
            f"designating {person.id} as an auditor",
            [*command, "auditors", "add", reference, "--label", label],
            demo.service_env,
        )


# -- main -----------------------------------------------------------------------------------------


def command_line(config: Path) -> str:
    """How to reach the ``trustanchor`` command for this demo: the console script beside the
    interpreter running the demo (``.venv/bin/trustanchor``, relative to the working directory
    when it is below it), else ``python -m trustanchor``."""
    script = Path(sys.executable).parent / "trustanchor"
    command = str(script) if script.is_file() else f"{sys.executable} -m trustanchor"
    if script.is_file() and script.is_relative_to(Path.cwd()):
        command = str(script.relative_to(Path.cwd()))
    target = config
    if config.is_absolute() and config.is_relative_to(Path.cwd()):
        target = config.relative_to(Path.cwd())
    return f"{command} --config {target} --help"


def print_urls(site: DemoSite, config: Path | None = None) -> None:
    lines = [
        "",
        "The demo is running (Ctrl-C stops it):",
        f"  service (landing page)  {site.service('/')}",
        f"  demo parties            {site.party('/')}",
        f"  demo bank               {site.party('/bank/')}",
        f"  demo wallet             {site.party('/wallet/')}",
        f"  My Number Card app      {site.party('/card/')}",
        f"  bank branch counter     {site.party('/branch/')}",
        f"  demo eKYC bank (OP)     {site.party('/ekyc-bank/')}",
        f"  demo ledger             {site.party('/ledger/')}",
        f"  auditor console         {site.service('/auditor/')}",
        "",
    ]
    if config is not None:
        lines += [
            "The trustanchor command (every operator command; or source .venv/bin/activate):",
            f"  {command_line(config)}",
            "",
        ]
    print("\n".join(lines), flush=True)


def supervise(children: Sequence[Child], stopping: Callable[[], bool]) -> int:
    while True:
        if stopping():
            say("stopping")
            stop(children)
            return 0
        for child in children:
            if child.exited():
                say(f"{child.name} exited (status {child.process.returncode}); stopping the demo")
                stop(children)
                return 1
        time.sleep(0.2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m trustanchor.demo",
        description="Run the trustanchor demo: the service plus a demo wallet, bank and ledger.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("TRUSTANCHOR_CONFIG", DEFAULT_CONFIG)),
        help="the service's configuration, in demo mode (default: config/demo.toml)",
    )
    parser.add_argument("--service-port", type=int, default=8000)
    parser.add_argument("--parties-port", type=int, default=8001)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the demo keeps its databases and credentials (default: var/demo, with the "
        "service's database as configured)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    children: list[Child] = []
    stop_requested = False

    def request_stop(_signum: int, _frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        demo = make_plan(args.config, args.service_port, args.parties_port, args.state_dir)
        check_port_free(demo.service_port, "service", "--service-port")
        check_port_free(demo.parties_port, "demo parties", "--parties-port")
        prepare_and_initialise(demo)
        say(f"starting the service on {demo.site.service_url}")
        children.append(start("the service", service_command(demo), demo.service_env))
        say(f"starting the demo parties on {demo.site.parties_url}")
        children.append(start("the demo parties", parties_command(demo), demo.parties_env))
        wait_until_answering(
            {
                "the service": demo.site.service("/.well-known/openid-configuration"),
                "the demo parties": demo.site.party("/"),
            },
            children,
            lambda: stop_requested,
        )
        if stop_requested:
            stop(children)
            return 0
        seed(demo)
        print_urls(demo.site, demo.config)
        return supervise(children, lambda: stop_requested)
    except LaunchError as exc:
        print(f"[demo] cannot start: {exc}", file=sys.stderr, flush=True)
        stop(children)
        return exc.status
    except BaseException:
        stop(children)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def prepare_and_initialise(demo: Plan) -> None:
    python, config = sys.executable, str(demo.config)
    state = str(demo.site.state_dir)
    run_step(
        "preparing the demo keys and credentials",
        [python, "-m", "trustanchor.demo.prepare", "--config", config, "--state-dir", state],
        demo.service_env,
    )
    run_step(
        "initialising the service",
        [python, "-m", "trustanchor", "--config", config, "init"],
        demo.service_env,
    )


def service_command(demo: Plan) -> list[str]:
    return [sys.executable, "-m", "trustanchor", "--config", str(demo.config), "serve"]


def parties_command(demo: Plan) -> list[str]:
    # granian's own lines and the parties' in the service's log format (trustanchor.log_setup)
    log_config = demo.site.state_dir / "parties-logging.json"
    log_config.parent.mkdir(parents=True, exist_ok=True)
    log_config.write_text(json.dumps(dictconfig()), encoding="utf-8")
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--host",
        HOST,
        "--port",
        str(demo.parties_port),
        "--workers",
        "1",
        "--blocking-threads",
        str(PARTIES_THREADS),
        "--no-access-log",
        "--log-config",
        str(log_config),
        "--factory",
        "trustanchor.demo.parties_app:app_from_environment",
    ]
