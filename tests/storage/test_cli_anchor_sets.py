"""``trustanchor anchor-sets``: list, show (policy with defaults spelt out) and set-policy
(validated, version bumped, audited; the configuration restores the declared policy on the next
start). Runs the real CLI against a SQLite database made by ``init``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from trustanchor.audit.entries import OperatorChange, parse_entry
from trustanchor.cli.main import cli
from trustanchor.config import load_settings
from trustanchor.storage.audit_repo import reference
from trustanchor.storage.database import Database
from trustanchor.storage.tables import audit_leaves

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
[service]
mode = "test"
issuer = "http://127.0.0.1:8000"
database_url = "sqlite:///{db}"
keys_dir = "{keys}"

[[anchor_sets]]
id = "jp-cbdc"
display_name = {{ en = "Japan CBDC pilot" }}
[anchor_sets.policy]
operations = ["account_link", "value_transfer"]
limits = {{ JPY = "1000000" }}
"""


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "service.toml"
    db = tmp_path / "db.sqlite"
    config.write_text(CONFIG.format(db=db, keys=tmp_path / "keys"), encoding="utf-8")
    result = run(config, "init")
    assert result.exit_code == 0, result.output
    return config, db


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def test_list_and_show_spell_out_the_policy(tmp_path: Path) -> None:
    config, _ = _setup(tmp_path)
    listed = run(config, "anchor-sets", "list")
    assert listed.exit_code == 0, listed.output
    assert "jp-cbdc" in listed.output and "Japan CBDC pilot" in listed.output
    shown = run(config, "anchor-sets", "show", "jp-cbdc")
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert document["version"] == 1
    assert document["policy"]["min_assurance_transfer"] == "high"  # the default, spelt out
    assert document["policy"]["limits"] == {"JPY": "1000000"}
    missing = run(config, "anchor-sets", "show", "nope")
    assert missing.exit_code != 0 and "no anchor set 'nope'" in missing.output


def test_set_policy_validates_bumps_the_version_and_audits(tmp_path: Path) -> None:
    config, db_path = _setup(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('operations = ["teleport"]\nlimits = { JPY = "1.5" }\n', encoding="utf-8")
    refused = run(config, "anchor-sets", "set-policy", "jp-cbdc", "--file", str(bad))
    assert refused.exit_code != 0
    assert "policy.operations" in refused.output and "policy.limits.JPY" in refused.output

    good = tmp_path / "good.toml"
    good.write_text(
        'operations = ["account_link"]\nmin_assurance_link = "high"\n', encoding="utf-8"
    )
    changed = run(config, "anchor-sets", "set-policy", "jp-cbdc", "--file", str(good))
    assert changed.exit_code == 0, changed.output
    assert "now version 2" in changed.output
    again = run(config, "anchor-sets", "set-policy", "jp-cbdc", "--file", str(good))
    assert "policy unchanged (version 2)" in again.output
    shown = json.loads(run(config, "anchor-sets", "show", "jp-cbdc").output)
    assert shown["policy"]["operations"] == ["account_link"]

    settings = load_settings(config, environ={})
    db = Database(settings.service.database_url)
    with db.reader() as conn:
        entries = [parse_entry(row.entry.encode()) for row in conn.execute(audit_leaves.select())]
    db.dispose()
    changes = [e for e in entries if isinstance(e, OperatorChange) and e.what == "anchor_set"]
    assert [(e.id, e.action) for e in changes][-1:] == [("jp-cbdc", "policy_changed")]
    assert reference(changes[-1]) is None
    assert db_path.exists()
