from __future__ import annotations


class InvalidTransition(Exception):
    """A state change asked of an object in a state that does not allow it (answered as 409)."""

    def __init__(self, subject: str, state: str, action: str) -> None:
        super().__init__(f"cannot {action} {subject}: it is {state}")
        self.state = state
        self.action = action


class QuotaExceeded(Exception):
    """A per-holder quota is used up (answered as 429 with Retry-After)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class LedgerTampered(Exception):
    """The ledger no longer extends what was signed before: nothing more is signed until an
    auditor has looked (`manage.py ledger verify`). Answered as 503."""
