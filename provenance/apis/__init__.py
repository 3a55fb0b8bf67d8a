"""The /api/v1/ endpoints: thin views that validate input, call a service, and render a selector."""

from provenance.apis.base import exception_handler

__all__ = ["exception_handler"]
