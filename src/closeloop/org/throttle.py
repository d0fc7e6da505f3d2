"""Failed sign-in throttling: after too many failures for one username or from one address, wait.

Kept in the process's memory (a few hundred bytes per recent failure); with several web processes
each counts on its own, so the effective limit is the limit times the number of processes.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from closeloop.core.errors import DomainError

WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_USERNAME = 10
MAX_FAILURES_PER_CLIENT = 50


class TooManyAttempts(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "Too many failed sign-ins; wait a few minutes and try again", code="too_many_attempts", status=429
        )


class SignInThrottle:
    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] < now - WINDOW_SECONDS:
            failures.popleft()
        return failures

    def check(self, username: str, client: str) -> None:
        """Raise :class:`TooManyAttempts` when this username or client failed too often lately."""
        now = time.monotonic()
        with self._lock:
            if (
                len(self._recent(f"user:{username.lower()}", now)) >= MAX_FAILURES_PER_USERNAME
                or len(self._recent(f"client:{client}", now)) >= MAX_FAILURES_PER_CLIENT
            ):
                raise TooManyAttempts()

    def failed(self, username: str, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._failures[f"user:{username.lower()}"].append(now)
            self._failures[f"client:{client}"].append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username.lower()}", None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()


throttle = SignInThrottle()
