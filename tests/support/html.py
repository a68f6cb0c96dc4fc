"""Reading the service's pages the way a browser would: forms, their fields, links by id."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.links: dict[str, str] = {}
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and "name" in a:
            self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and self._form is not None and "name" in a:
            self._form.buttons.append((a["name"], a.get("value", "")))
        elif tag == "a" and "id" in a:
            self.links[a["id"]] = a.get("href", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


@dataclass
class Page:
    forms: list[Form]
    links: dict[str, str]
    text: str

    def form_with(self, action_suffix: str) -> Form:
        for form in self.forms:
            if form.action.endswith(action_suffix):
                return form
        raise AssertionError(f"no form posting to *{action_suffix} in page")


def parse(html: str) -> Page:
    parser = _PageParser()
    parser.feed(html)
    return Page(parser.forms, parser.links, html)
