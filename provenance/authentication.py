"""HTTP Basic authentication whose password is an API token: for clients that can send Basic
credentials and nothing else (mlcroissant reads CROISSANT_BASIC_AUTH_USERNAME and _PASSWORD).
An account password is never accepted here, so this opens no password-guessing door."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request


class TokenBasicAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"basic":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Basic credentials: one base64 value")
        try:
            username, _, token = base64.b64decode(parts[1], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Basic credentials: not base64 of "
                                                  "'username:token'") from None
        user, auth = TokenAuthentication().authenticate_credentials(token.encode())
        if user.get_username() != username:
            raise exceptions.AuthenticationFailed("the token is not this user's")
        return user, auth

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="trailmark", charset="UTF-8"'


class TokenBasicScheme(OpenApiAuthenticationExtension):
    """How the schema describes it (drf-spectacular registers the subclass on import)."""

    target_class = TokenBasicAuthentication
    name = "tokenBasicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "basic",
                "description": "your username, and an API token (POST /api/v1/auth/token/) as "
                               "the password; an account password is refused"}
