"""Errors raised by the Connect client. Messages never contain the API key or a temp_ticket."""

from __future__ import annotations


class ConnectError(Exception):
    """Base class of every error the Connect client raises."""


class ConnectUnavailable(ConnectError):
    """Connect could not be reached or failed on its side (timeout, connection error, 5xx, 429).

    For a request that changes state (the PUT) the outcome is unknown: the caller must find out
    whether it took effect before doing anything else.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason  # "timeout" | "connection" | "server_error" | "rate_limited"
        self.status = status
        # Seconds the server asked us to wait (Retry-After on 429/503), uncapped; None if not sent.
        self.retry_after = retry_after


class ConnectAPIError(ConnectError):
    """Connect answered with a 4xx and (usually) its JSON error body `{code, error, payload}`."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"Connect answered {status} (code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


class ConnectProtocolError(ConnectError):
    """Connect answered 2xx with something the bot cannot read (not JSON, fields missing)."""
