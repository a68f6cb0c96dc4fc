"""Issue 10 (found by the attack session): anyone may start a login on the service's own pages
(``/my/login``, ``/auditor/login``), and each start stores a pushed request and an interaction
until the daily purge. Their rate is bounded per process: beyond the burst a start is answered
429 with Retry-After and stores nothing. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import requests
from sqlalchemy import func, select
from support.stage import Stage

from trustanchor.services.container import LOGIN_START_BURST, LOGIN_START_PER_SECOND
from trustanchor.storage.tables import interactions, par_requests


def _rows(stage: Stage) -> tuple[int, int]:
    with stage.server.services.db.reader() as conn:
        pushed = conn.execute(select(func.count()).select_from(par_requests)).scalar_one()
        parked = conn.execute(select(func.count()).select_from(interactions)).scalar_one()
    return int(pushed), int(parked)


def test_anonymous_first_party_login_starts_are_bounded(stage: Stage) -> None:
    started = time.monotonic()
    answers = []
    for path in ("/my/login", "/auditor/login") * 60:
        browser = requests.Session()  # a fresh "browser" each time, as a script would
        answer = browser.post(stage.server.url(path), allow_redirects=False, timeout=10)
        if answer.status_code == 303:
            browser.get(answer.headers["Location"], allow_redirects=False, timeout=10)
        answers.append(answer)
    elapsed = time.monotonic() - started
    allowed = LOGIN_START_BURST + LOGIN_START_PER_SECOND * (int(elapsed) + 1)
    accepted = [a for a in answers if a.status_code == 303]
    busy = [a for a in answers if a.status_code == 429]
    assert len(accepted) + len(busy) == len(answers)
    assert LOGIN_START_BURST <= len(accepted) <= allowed
    assert all(a.headers["Retry-After"] == "2" for a in busy)
    assert "try again" in busy[0].text
    pushed, parked = _rows(stage)
    assert pushed <= allowed and parked <= allowed
