"""Assertions shared by flow tests."""

from __future__ import annotations

import requests


def assert_json_error(response: requests.Response, status: int, error: str) -> None:
    """An OAuth error: the status, a JSON body, the exact error code."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == error, response.text
