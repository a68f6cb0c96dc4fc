"""``python -m trustanchor.demo`` end to end: on free ports, with its own keys and state, both
origins answer, the bank's accounts are seeded at the service, the payees' accounts linked
through the real login and consent, and Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from support.server import REPO, free_port

from trustanchor.demo.autopilot import ServiceVisitor
from trustanchor.demo.branch import open_branch
from trustanchor.demo.launcher import DERIVED_CONFIG
from trustanchor.demo.parties_state import open_bank, parties_engine
from trustanchor.demo.people import load_people
from trustanchor.demo.site import DemoSite


def demo_config(tmp_path: Path) -> Path:
    """config/demo.toml with the keys under ``tmp_path`` (the checkout's keys/demo untouched)."""
    directory = tmp_path / "config"
    directory.mkdir()
    keys = tmp_path / "keys"
    text = (REPO / "config" / "demo.toml").read_text("utf-8")
    text = text.replace('keys_dir = "../keys/demo"', f'keys_dir = "{keys}"')
    text = text.replace('"../keys/demo/', f'"{keys}/')
    (directory / "demo.toml").write_text(text, "utf-8")
    return directory / "demo.toml"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_launcher_starts_seeds_and_stops_the_demo(tmp_path: Path) -> None:
    service_port, parties_port = free_port(), free_port()
    state = tmp_path / "state"
    demo_config_path = demo_config(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTANCHOR_")}
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trustanchor.demo",
            "--config",
            str(demo_config_path),
            "--service-port",
            str(service_port),
            "--parties-port",
            str(parties_port),
            "--state-dir",
            str(state),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    service = f"http://127.0.0.1:{service_port}"
    parties = f"http://127.0.0.1:{parties_port}"
    output = ""
    try:
        deadline = time.monotonic() + 60
        assert launcher.stdout is not None
        for line in launcher.stdout:
            output += line
            if line.startswith("The demo is running") or time.monotonic() > deadline:
                break
        assert "The demo is running" in output, output
        # The addresses, then how to reach the operator's command (README "Running it"), all
        # printed at once: read up to the command line (communicate() would miss what the
        # line iterator has buffered).
        for line in launcher.stdout:
            output += line
            if " --help" in line:
                break
        assert "The trustanchor command" in output, output
        # (other ports than the configuration's: the derived copy, which says them all)
        assert f"trustanchor --config {state / DERIVED_CONFIG} --help" in output, output
        landing = requests.get(service + "/", timeout=5)
        assert landing.status_code == 200, output
        assert parties + "/bank/" in landing.text  # the service's root page lists the parts
        index = requests.get(parties + "/", timeout=5)
        assert index.status_code == 200
        for part in ("/wallet/", "/bank/", "/ledger/"):
            assert parties + part in index.text
        bank = requests.get(parties + "/bank/", timeout=5)
        assert bank.status_code == 200 and "Sign in with your smartphone ID" in bank.text
        discovery = requests.get(service + "/.well-known/openid-configuration", timeout=5).json()
        assert discovery["issuer"] == service

        # The seed step registered every demo account at the service (the bank's own records
        # name the service's account ids) and opened the wallets at the ledger.
        site = DemoSite(service, parties, tmp_path / "keys", state)
        engine = parties_engine(state)
        try:
            desk, _ = open_bank(site, engine)
            registered = desk.store.accounts()
            # The online bank's customers' accounts, and the branch counter's (its own client)
            # for the people without a smartphone.
            counter = open_branch(site, desk.store, desk.book)
            customers = (*desk.people, *counter.people)
            assert [p.id for p in counter.people] == ["ume"]
            assert len(registered) == sum(len(p.accounts) for p in customers)
            assert len(desk.book.accounts()) == len(customers)
            # ... and linked the payees' accounts through the real flow (their login with the
            # demo wallet, their approval at the service), not the person the evaluator plays.
            linked = {p.id for p in desk.people if desk.active_link(p) is not None}
            assert linked == {"taro", "erika"}, output
        finally:
            engine.dispose()
        # ... and designated the demo auditor: her login to the console opens the overview.
        auditor = next(p for p in load_people() if p.auditor)
        visitor = ServiceVisitor(site, auditor)
        try:
            console = visitor.open_auditor_console()
        finally:
            visitor.close()
        assert 'id="auditor-reference"' not in console, console
        assert "/auditor/entries" in console, console

        launcher.send_signal(signal.SIGINT)
        rest, _ = launcher.communicate(timeout=30)
        output += rest
        assert launcher.returncode == 0, output
        assert "[demo] stopping" in output
        assert not listening(service_port) and not listening(parties_port), output

        # A restart on the same state starts again: nothing seeded twice, the auditor kept.
        launcher = subprocess.Popen(
            launcher.args,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        again = ""
        deadline = time.monotonic() + 60
        assert launcher.stdout is not None
        for line in launcher.stdout:
            again += line
            if line.startswith("The demo is running") or time.monotonic() > deadline:
                break
        assert "The demo is running" in again, again
        assert f"[demo] {auditor.id} is an auditor already" in again, again
        assert "[demo] bank: accounts already registered" in again, again
        launcher.send_signal(signal.SIGINT)
        launcher.communicate(timeout=30)
        assert launcher.returncode == 0
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(timeout=10)


def test_the_launcher_refuses_a_configuration_not_in_demo_mode() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trustanchor.demo", "--config", str(REPO / "config" / "test.toml")],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("TRUSTANCHOR_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert 'service.mode = "demo"' in result.stderr
