"""Where the demo ecosystem lives: the service's origin, the demo parties' origin (wallet, bank
and ledger share one small web app), the demo keys and the demo state on disk, plus the injected
clock and randomness every demo part uses.

The demo is a separate package: the service never imports ``trustanchor.demo``; the demo talks to
the service only over HTTP, as a real wallet, bank or ledger would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trustanchor.clock import Clock, SystemClock
from trustanchor.randomness import Randomness, SystemRandomness

DEFAULT_SERVICE_URL = "http://127.0.0.1:8000"
DEFAULT_PARTIES_URL = "http://127.0.0.1:8001"


@dataclass(frozen=True)
class DemoSite:
    service_url: str  # the trustanchor issuer, e.g. http://127.0.0.1:8000 (no trailing slash)
    parties_url: str  # the demo parties' app: /wallet, /bank, /ledger under it
    keys_dir: Path  # keys/demo: anchors/, clients/, holders/ (private halves never committed)
    state_dir: Path  # var/demo: the parties' SQLite database and issued credentials
    clock: Clock = field(default_factory=SystemClock)
    randomness: Randomness = field(default_factory=SystemRandomness)

    def service(self, path: str) -> str:
        return self.service_url + path

    def party(self, path: str) -> str:
        return self.parties_url + path
