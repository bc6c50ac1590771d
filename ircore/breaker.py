"""A per-process circuit breaker for a shared service that may become unreachable
(Redis, as the cache in ``ircore.cache`` and as the task broker in ``ircore.tasks``).

Why one: a service that accepts connections and never answers costs every call its
socket timeout, and an outage seen by every request would log one warning per call.
After a failure, callers skip the service for ``retry_seconds`` (then one call tries it
again while the others keep skipping), one warning is logged per outage and one info
line when the service answers again. Shared by the threads of a process.
"""

from __future__ import annotations

import logging
import threading
import time


class Breaker:
    def __init__(self, *, retry_seconds: float, log: logging.Logger, down_message: str,
                 up_message: str) -> None:
        self.retry_seconds = retry_seconds
        self._log = log  # the caller's, so the messages name the module that degraded
        self.down = False
        self._down_message = down_message  # formatted with the exception
        self._up_message = up_message
        self._lock = threading.Lock()
        self._retry_at = 0.0

    def allowed(self) -> bool:
        """Whether to call the service now."""
        if not self.down:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._retry_at:
                return False
            self._retry_at = now + self.retry_seconds  # this call is the retry
            return True

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + self.retry_seconds
            if self.down:
                return
            self.down = True
        self._log.warning(self._down_message, exc)

    def answered(self) -> bool:
        """The service answered; True if that ended an outage (for the caller's clean-up)."""
        if not self.down:
            return False
        with self._lock:
            if not self.down:
                return False
            self.down = False
        self._log.info(self._up_message)
        return True
