"""Failed sign-ins, counted per client address AND token prefix.

After ``failures`` failed attempts (a wrong login token, an unknown, expired or revoked
bearer token or session cookie) with tokens that start alike (``PREFIX_CHARS``) from one
client address within ``window`` seconds, that address gets 429 with ``Retry-After`` for
tokens with that prefix, until the oldest failure leaves the window. The lock-out is
checked before the token, so a client that keeps sending a token it got wrong (a script
holding a revoked token, a guesser working on a known prefix) stops reaching the
database, and a right guess while locked out opens nothing.

The prefix is what keeps the lock-out from becoming a denial of service: every OEM behind
one proxy (or one office NAT) shares an address, and a count per address alone let ten
bad tokens from any of them lock out all the others. A valid token has 256 random bits;
its first ``PREFIX_CHARS`` characters (48 random bits after ``rtp_``) are no one else's,
so another client's failures never land on it. What this does not do is slow a guesser
who draws a fresh random token each time: each draw has its own prefix. Guessing 256
random bits is hopeless at any rate; a flood of requests is the TLS proxy's to limit.

In-process: each api-server or portal process counts on its own (N processes allow N
times the attempts), and the address is the one the ASGI server reports (behind a
proxy: uvicorn's ``--forwarded-allow-ips``/``FORWARDED_ALLOW_IPS`` naming the proxy's
addresses or networks, so that it is the client's).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# (address, prefix) pairs remembered at most; past it the least recently failed are
# forgotten, so a flood of spoofed addresses or random tokens cannot grow the process
MAX_KEYS = 10_000
# "rtp_" and 8 characters of the token's base64 (48 bits)
PREFIX_CHARS = 12


class TooManySignIns(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"too many failed sign-ins with this token from your address: retry in {retry_after} s")
        self.retry_after = retry_after


def failure_key(client: str, token: str) -> tuple[str, str]:
    return client, token[:PREFIX_CHARS]


class SignInLimiter:
    def __init__(self, failures: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.failures = failures
        self.window = window
        self.clock = clock
        self._seen: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # sync routes run in a thread pool

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._seen.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def check(self, client: str, token: str) -> None:
        """Raise :class:`TooManySignIns` while ``client`` is locked out for ``token``'s prefix."""
        key = failure_key(client, token)
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            if not times:
                self._seen.pop(key, None)
            elif len(times) >= self.failures:
                raise TooManySignIns(max(1, math.ceil(times[-self.failures] + self.window - now)))

    def failed(self, client: str, token: str) -> None:
        key = failure_key(client, token)
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            times.append(now)
            self._seen[key] = times
            self._seen.move_to_end(key)
            while len(self._seen) > MAX_KEYS:
                self._seen.popitem(last=False)
