"""API tokens (django-rest-knox): issued for a username and password, stored only as a SHA-512
digest, expiring (renewed by use, up to a maximum age), revocable one by one or all at once."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from knox.settings import knox_settings
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.throttling import PasswordThrottle


class TokenOut(serializers.Serializer):
    token = serializers.CharField(help_text="send as `Authorization: Token <token>`; shown once")
    expiry = serializers.DateTimeField(help_text="renewed by each use, up to the maximum age")


class TokenView(APIView):
    """POST username + password, get a token for `Authorization: Token ...`."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [PasswordThrottle]  # shares the sign-in page's count per address

    @extend_schema(request=AuthTokenSerializer, responses={200: TokenOut})
    def post(self, request: Request) -> Response:
        credentials = AuthTokenSerializer(data=request.data, context={"request": request})
        credentials.is_valid(raise_exception=True)
        user = credentials.validated_data["user"]
        instance, token = AuthToken.objects.create(user=user, expiry=knox_settings.TOKEN_TTL)
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        return Response({"token": token, "expiry": instance.expiry})


class TokenRevokeView(APIView):
    """Revoke the token this request is signed with."""

    permission_classes = [IsAuthenticated]
    everyone = False

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        if self.everyone:
            AuthToken.objects.filter(user=request.user).delete()
        elif isinstance(request.auth, AuthToken):
            request.auth.delete()
        else:  # signed in by session: there is no "this token"
            return Response({"detail": "this request carries no API token; use "
                                       "/api/v1/auth/logout-all/ to revoke all of yours"},
                            status=status.HTTP_400_BAD_REQUEST)
        user_logged_out.send(sender=request.user.__class__, request=request, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
