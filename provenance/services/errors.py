from __future__ import annotations


class InvalidTransition(Exception):
    """A state change asked of an object in a state that does not allow it (answered as 409)."""

    def __init__(self, subject: str, state: str, action: str) -> None:
        super().__init__(f"cannot {action} {subject}: it is {state}")
        self.state = state
        self.action = action
