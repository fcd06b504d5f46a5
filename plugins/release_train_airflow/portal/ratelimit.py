"""Sign-in attempts per client address: a token is 256 random bits, so guessing one is
hopeless, but an unthrottled endpoint still invites trying and fills the logs. After
``failures`` failed attempts (a wrong login token, an unknown, expired or revoked bearer
token or session cookie) within ``window`` seconds, an address gets 429 with
``Retry-After`` until the oldest failure leaves the window, whatever it sends, so a
token guessed right while locked out does not open anything either.

In-process: each api-server or portal process counts on its own (N processes allow N
times the attempts), and the address is the one the ASGI server reports (behind a
proxy: run uvicorn with ``--forwarded-allow-ips`` so it is the client's).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

# addresses remembered at most; past it the quietest are forgotten, so a flood of
# spoofed addresses cannot grow the process without bound
MAX_CLIENTS = 10_000


class TooManySignIns(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"too many failed sign-ins from your address: retry in {retry_after} s")
        self.retry_after = retry_after


class SignInLimiter:
    def __init__(self, failures: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.failures = failures
        self.window = window
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # sync routes run in a thread pool

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen.get(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def check(self, client: str) -> None:
        """Raise :class:`TooManySignIns` while ``client`` is locked out."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            if not times:
                self._seen.pop(client, None)
            elif len(times) >= self.failures:
                raise TooManySignIns(max(1, math.ceil(times[-self.failures] + self.window - now)))

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            times.append(now)
            self._seen[client] = times
            if len(self._seen) > MAX_CLIENTS:
                quietest = min(self._seen, key=lambda c: self._seen[c][-1] if self._seen[c] else -math.inf)
                del self._seen[quietest]
