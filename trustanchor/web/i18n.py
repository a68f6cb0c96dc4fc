"""Japanese and English texts for the pages, chosen by ?lang=, a cookie, the request's
ui_locales, or Accept-Language — in that order."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

LANGUAGES = ("ja", "en")
DEFAULT = "en"
_DIR = Path(__file__).parent / "catalogs"


@cache
def catalog(language: str, directory: Path = _DIR) -> dict[str, str]:
    """``<directory>/<lang>.toml`` plus every ``<directory>/<lang>/*.toml`` (one file per
    feature). A key defined twice is an error, not a silent override. ``directory`` is the
    service's catalogs unless another package (the demo) keeps its own."""
    flat: dict[str, str] = {}
    files = [directory / f"{language}.toml", *sorted((directory / language).glob("*.toml"))]
    for path in (path for path in files if path.exists()):
        with path.open("rb") as fh:
            part: dict[str, str] = {}
            _flatten("", tomllib.load(fh), part)
        clash = sorted(set(part) & set(flat))
        if clash:
            raise ValueError(f"{path.name}: text {clash[0]!r} is already defined")
        flat.update(part)
    return flat


def _flatten(prefix: str, data: dict[str, object], out: dict[str, str]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(name + ".", value, out)
        else:
            out[name] = str(value)


class Translator:
    def __init__(self, language: str, directory: Path = _DIR) -> None:
        self.language = language if language in LANGUAGES else DEFAULT
        self._texts = catalog(self.language, directory)
        self._fallback = catalog(DEFAULT, directory)

    def __call__(self, key: str, **values: object) -> str:
        text = self._texts.get(key) or self._fallback.get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._texts or key in self._fallback


def choose(
    explicit: str | None, cookie: str | None, ui_locales: Iterable[str], accept: Iterable[str]
) -> str:
    for candidate in (explicit, cookie, *ui_locales, *accept):
        if candidate:
            base = candidate.split("-")[0].lower()
            if base in LANGUAGES:
                return base
    return DEFAULT
