"""REDIS_URL, read strictly: the address, the credentials and the database it names, or an error
that says what is wrong without repeating any part of the URL (it holds a password).

`urllib.parse` splits a URL at the first `#` or `?` and at the first `/` after the host, so a
password holding one of them raw used to become a fragment, a query or a path: part of the
password was then parsed as a port and printed in the error, or the host vanished and the cache
silently fell back to 127.0.0.1 without a password. Such a URL is now refused, with a hint to
percent-encode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

SCHEMES = ("redis", "rediss")
DEFAULT_PORT = 6379
ENCODE_HINT = (
    "percent-encode special characters in the user name and password "
    "(# as %23, ? as %3F, / as %2F, @ as %40, % as %25, : in a user name as %3A)"
)


@dataclass(frozen=True, slots=True)
class RedisAddress:
    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False


def parse_redis_url(url: str) -> RedisAddress:
    """`redis://[user[:password]@]host[:port][/db]` (or `rediss://` for TLS), percent-decoded.

    Raises ValueError whose message never contains any part of `url`.
    """
    text = url.strip()
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in text):
        raise ValueError("must not contain spaces or control characters")
    scheme, separator, _ = text.partition("://")
    if not separator or scheme.lower() not in SCHEMES:
        raise ValueError("must start with redis:// or rediss://")
    parts = urlsplit(text)
    if parts.fragment or parts.query or "#" in text or "?" in text:
        raise ValueError(f"holds a raw '#' or '?': {ENCODE_HINT}")
    path = parts.path
    if path not in ("", "/") and not (path[1:].isascii() and path[1:].isdigit()):
        raise ValueError(
            f"must end with the database number (redis://host:6379/0); a raw '/' in the password "
            f"cuts it short: {ENCODE_HINT}"
        )
    if not parts.hostname:
        raise ValueError("names no host (redis://host:6379/0)")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"the port must be a number from 1 to 65535; {ENCODE_HINT}")
    try:
        username = unquote(parts.username, errors="strict") if parts.username else None
        password = unquote(parts.password, errors="strict") if parts.password else None
    except UnicodeDecodeError:
        raise ValueError(
            f"the user name or password is not valid UTF-8 once decoded; {ENCODE_HINT}"
        ) from None
    db = int(path[1:]) if len(path) > 1 else 0
    if db > 10_000:
        raise ValueError("the database number is out of range")
    return RedisAddress(
        host=parts.hostname,
        port=port or DEFAULT_PORT,
        db=db,
        username=username,
        password=password,
        ssl=scheme.lower() == "rediss",
    )
