"""The layering rules of docs/DEVELOPING.md, checked on the source: the protocol and domain core
never imports Flask (or werkzeug), the service never imports the demo, and the demo's protocol
sides are framework-free like the core."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "trustanchor"
CORE = (
    "domain",
    "policy",
    "audit",
    "ledger",
    "jose",
    "oauth",
    "anchors",
    "openid4vp",
    "services",
    "storage",
)
WEB_FRAMEWORKS = ("flask", "werkzeug")
DEMO_PAGES = {"wallet_pages.py", "ledger_pages.py", "page_context.py", "parties_app.py", "pages.py"}
DEMO_PAGES |= {"ekyc_op.py"}  # the demo eKYC bank's OpenID Provider: Authlib's Flask server
DEMO_PAGES |= {"card_pages.py", "branch_pages.py"}  # the phone's card app, the branch counter


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def offenders(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in paths
        for module in imported_modules(path)
        if module.split(".")[0] in forbidden or module.startswith(forbidden)
    )


def test_the_core_never_imports_a_web_framework() -> None:
    paths = [p for package in CORE for p in sorted((PACKAGE / package).rglob("*.py"))]
    assert len(paths) > 50
    assert offenders(paths, WEB_FRAMEWORKS) == []


def test_the_service_never_imports_the_demo() -> None:
    paths = [p for p in sorted(PACKAGE.rglob("*.py")) if "demo" not in p.relative_to(PACKAGE).parts]
    assert offenders(paths, ("trustanchor.demo",)) == []


def test_the_demos_protocol_sides_are_framework_free() -> None:
    paths = [p for p in sorted((PACKAGE / "demo").rglob("*.py")) if p.name not in DEMO_PAGES]
    assert {p.name for p in paths} >= {"holder.py", "issuer.py", "autopilot.py", "client.py"}
    assert {p.name for p in paths} >= {"card_app.py", "jpki_ca.py", "branch.py"}
    assert offenders(paths, WEB_FRAMEWORKS) == []


def package_paths(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


def test_anchors_are_a_pure_layer_of_verifiers() -> None:
    """Verifiers know their anchor, their settings and the ports they are given (fetcher,
    clock); storing, deciding and applying declarations belong to the service (issue 11)."""
    forbidden = tuple(
        f"trustanchor.{name}" for name in ("storage", "services", "policy", "web", "cli", "demo")
    )
    assert offenders(package_paths("anchors"), forbidden) == []


def test_storage_reads_and_writes_rows_without_protocol_or_service_logic() -> None:
    """Storage turns rows into domain values; it never parses protocol metadata (client
    metadata is parsed by services/client_registry.py) or calls the service layer."""
    forbidden = tuple(
        f"trustanchor.{name}" for name in ("oauth", "services", "policy", "web", "cli", "demo")
    )
    assert offenders(package_paths("storage"), forbidden) == []
