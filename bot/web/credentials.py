"""Who is visiting: the `RStudio-Connect-Credentials` header Posit Connect adds for a logged-in
visitor of hosted content.

The header is JSON, `{"user": "<username>", "groups": ["<group>", ...]}`. Groups are missing, null
or empty under LDAP, so nothing may depend on them being there. With Connect's
`Authorization.ContentCredentialsUseGUID` on (our `CONNECT_CREDENTIALS_USE_GUID`), both hold GUIDs,
which are unique where names may not be, and are resolved to names through the API.

Outcomes, and the HTTP status each becomes in the routes:

* no header, or a null/empty `user`: an anonymous visitor (not an error: Connect sends nothing for
  someone who is not logged in, and nothing at all outside Connect);
* a header that cannot be read (not JSON, wrong types, too large, too many groups, sent twice, not
  a GUID in GUID mode): `CredentialsError`, a 400 whose message says what is wrong without
  echoing the value;
* a GUID Connect does not know (a deleted account): not identified, like an anonymous visitor.
  Connect only ever sends GUIDs of accounts it has, so this is a stale or forged value, and
  "you are nobody" is the answer that fails closed without blaming the visitor's browser;
* Connect unreachable or refusing the bot's key while resolving: `IdentityUnavailable`, a 503.

Whether the header is believed at all is decided by the caller (`TRUST_CONNECT_CREDENTIALS`):
outside Connect anyone can send it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, model_validator

from bot.cache.keyed import KeyedCache, cache_key
from bot.connect.errors import ConnectAPIError, ConnectError, ConnectUnavailable
from bot.connect.models import ConnectGroup, ConnectUser

log = logging.getLogger(__name__)

HEADER_NAME = "RStudio-Connect-Credentials"
# Far above a real header (a username and a few dozen group names), far below what the HTTP
# server itself accepts: anything bigger is not Connect's doing.
MAX_HEADER_BYTES = 8 * 1024
MAX_GROUPS = 200
MAX_NAME_CHARS = 256
# Resolved names and roles are reused this long: a role taken away stops counting within a
# minute, and a busy audit page does not ask Connect about the same visitor on every load.
IDENTITY_CACHE_TTL = 60.0
# Bounds the calls one visitor's group list can fan out into.
MAX_CONCURRENT_LOOKUPS = 8

_GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

Name = Annotated[StrictStr, Field(max_length=MAX_NAME_CHARS)]


class CredentialsError(ValueError):
    """The header is present but unreadable; the message is safe to show the visitor."""


class IdentityUnavailable(Exception):
    """Connect could not be asked who the visitor is; the message is safe to show."""


def is_guid(value: str) -> bool:
    return bool(_GUID_RE.match(value))


class ConnectCredentials(BaseModel):
    """The header's JSON. Unknown keys are ignored so a newer Connect adding one breaks nothing."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    user: Name | None = None
    groups: tuple[Name, ...] = Field(default=(), max_length=MAX_GROUPS)

    @model_validator(mode="before")
    @classmethod
    def _lenient_absences(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("groups") is None:
            # LDAP sends no groups at all; some versions send null.
            data = {**data, "groups": ()}
        return data

    @property
    def username(self) -> str | None:
        """The user, or None for an anonymous visitor (null or empty `user`)."""
        return self.user or None

    @property
    def group_list(self) -> tuple[str, ...]:
        return tuple(group for group in self.groups if group)


def parse_credentials(raw: str | bytes | None) -> ConnectCredentials | None:
    """The header's value as Connect sent it; None when there is none.

    Raises CredentialsError naming the problem; the value itself is never quoted (it may hold
    personal data, and echoing input back is how reflected injection starts).
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            data = raw.encode("latin-1")
        except UnicodeEncodeError:
            # Not from Starlette (which only makes latin-1 strings): already decoded text.
            data = raw.encode("utf-8")
    else:
        data = raw
    if len(data) > MAX_HEADER_BYTES:
        raise CredentialsError(
            f"{HEADER_NAME} is {len(data)} bytes; at most {MAX_HEADER_BYTES} are accepted"
        )
    if not data.strip():
        return None
    try:
        # Starlette decodes headers as latin-1; Connect sends UTF-8 JSON, so the bytes are
        # decoded again here and names with accents come out right.
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        parsed = _NOT_JSON
    except RecursionError:
        # 8 KiB of "[" is enough to exhaust the decoder's recursion: still the client's fault.
        parsed = _TOO_DEEP
    # Raised outside the except blocks so the decoder's error (which quotes the input) is not
    # chained onto ours.
    if parsed is _NOT_JSON:
        raise CredentialsError(f"{HEADER_NAME} is not valid UTF-8 JSON")
    if parsed is _TOO_DEEP:
        raise CredentialsError(f"{HEADER_NAME} is nested too deeply")
    if not isinstance(parsed, dict):
        raise CredentialsError(f'{HEADER_NAME} must be a JSON object like {{"user": "…"}}')
    try:
        return ConnectCredentials.model_validate(parsed)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors(include_input=False)[:3]]
    raise CredentialsError(f"{HEADER_NAME} is malformed: {'; '.join(problems)}")


_NOT_JSON = object()
_TOO_DEEP = object()


def _describe(error: Any) -> str:
    loc = [part for part in error["loc"] if part != "__root__"]
    field = str(loc[0]) if loc else "(value)"
    kind = error["type"]
    if field == "groups" and len(loc) == 1 and kind == "too_long":
        return f"groups has more than {MAX_GROUPS} entries"
    if kind in ("string_too_long", "too_long"):
        return f"{field} is longer than {MAX_NAME_CHARS} characters"
    if field == "groups":
        return "groups must be a list of strings"
    if field == "user":
        return "user must be a string"
    return f"{field}: {error['msg']}"


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is asking, as far as the header (and Connect, in GUID mode) says.

    `username` is None for anyone not identified. `guid` is known in GUID mode only. `groups` are
    as the header gave them: names, or GUIDs in GUID mode (`VisitorResolver.group_names`).
    """

    username: str | None = None
    guid: str | None = None
    groups: tuple[str, ...] = ()

    @property
    def identified(self) -> bool:
        return self.username is not None


ANONYMOUS = Visitor()


class ConnectLookups(Protocol):
    """The slice of the Connect client identity needs."""

    async def get_user(self, guid: str) -> ConnectUser: ...

    async def get_group(self, guid: str) -> ConnectGroup: ...

    async def find_user(self, username: str) -> ConnectUser | None: ...


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What the bot keeps about a Connect account: enough to name it and check its role."""

    guid: str
    username: str
    role: str | None

    @property
    def is_administrator(self) -> bool:
        return self.role == "administrator"


class VisitorResolver:
    """Turns the header into a Visitor, asking Connect (cached) where GUIDs need names."""

    def __init__(
        self,
        connect: ConnectLookups,
        cache: KeyedCache,
        *,
        use_guid: bool,
        ttl: float = IDENTITY_CACHE_TTL,
    ) -> None:
        self._connect = connect
        self._cache = cache
        self.use_guid = use_guid
        self._ttl = ttl
        self._lookups = asyncio.Semaphore(MAX_CONCURRENT_LOOKUPS)

    async def resolve(self, credentials: ConnectCredentials | None) -> Visitor:
        if credentials is None or credentials.username is None:
            return ANONYMOUS
        user, groups = credentials.username, credentials.group_list
        if not self.use_guid:
            return Visitor(username=user, groups=groups)
        if not is_guid(user) or not all(is_guid(group) for group in groups):
            raise CredentialsError(
                f"{HEADER_NAME} should hold GUIDs (this bot is configured with "
                "CONNECT_CREDENTIALS_USE_GUID=true); ask the administrator to make it match "
                "Connect's Authorization.ContentCredentialsUseGUID"
            )
        account = await self.account_by_guid(user)
        if account is None:
            log.info("visitor GUID unknown to Connect: treated as not identified")
            return ANONYMOUS
        return Visitor(
            username=account.username,
            guid=account.guid.lower(),
            groups=tuple(group.lower() for group in groups),
        )

    async def account_by_guid(self, guid: str) -> AccountInfo | None:
        guid = guid.lower()

        async def fetch() -> AccountInfo | None:
            user = await self._ask(lambda: self._connect.get_user(guid))
            return None if user is None else _account(user)

        return await self._cached(cache_key("visitor-account-guid", guid), fetch)

    async def account_by_username(self, username: str) -> AccountInfo | None:
        async def fetch() -> AccountInfo | None:
            user = await self._ask(lambda: self._connect.find_user(username))
            return None if user is None else _account(user)

        return await self._cached(cache_key("visitor-account-name", username), fetch)

    async def group_name(self, guid: str) -> str | None:
        guid = guid.lower()

        async def fetch() -> str | None:
            group = await self._ask(lambda: self._connect.get_group(guid))
            return None if group is None else group.name

        key = cache_key("visitor-group-guid", guid)
        return await self._cache.get_or_compute(
            key,
            fetch,
            ttl=self._ttl,
            # Stored boxed: the cache treats a stored None as a miss, and "no such group" is
            # worth remembering too.
            dump=lambda value: {"name": value},
            load=lambda stored: stored["name"],
        )

    async def group_names(self, visitor: Visitor) -> tuple[str, ...]:
        """The visitor's group names: as given in name mode, looked up in GUID mode (groups
        Connect no longer knows are left out)."""
        if not self.use_guid:
            return visitor.groups
        names = await asyncio.gather(*(self.group_name(guid) for guid in visitor.groups))
        return tuple(name for name in names if name is not None)

    async def role_of(self, visitor: Visitor) -> str | None:
        """The visitor's Connect role, None when unknown (no account, not identified)."""
        if not visitor.identified:
            return None
        if visitor.guid is not None:
            account = await self.account_by_guid(visitor.guid)
        else:
            assert visitor.username is not None
            account = await self.account_by_username(visitor.username)
        return None if account is None else account.role

    async def _cached(
        self, key: str, fetch: Callable[[], Awaitable[AccountInfo | None]]
    ) -> AccountInfo | None:
        return await self._cache.get_or_compute(
            key,
            fetch,
            ttl=self._ttl,
            dump=_dump_account,
            load=_load_account,
        )

    async def _ask(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """One Connect look-up: None when Connect says there is no such object."""
        async with self._lookups:
            try:
                return await call()
            except ConnectAPIError as exc:
                if exc.status == 404:
                    return None
                failure: ConnectError = exc
            except ConnectError as exc:
                failure = exc
        # Logged with the client's own message: it never holds the key, and says which call.
        log.warning("could not resolve a visitor through Connect: %s", failure)
        if isinstance(failure, ConnectUnavailable):
            raise IdentityUnavailable(
                "Posit Connect could not be reached to check who you are; try again in a moment"
            )
        raise IdentityUnavailable(
            "Posit Connect refused the bot's look-up of who you are; the bot's administrator "
            "should run `connect-user-bot check`"
        )


def _account(user: ConnectUser) -> AccountInfo:
    return AccountInfo(guid=user.guid.lower(), username=user.username, role=user.user_role)


def _dump_account(account: AccountInfo | None) -> dict[str, Any]:
    if account is None:
        return {"found": False}
    return {"found": True, "guid": account.guid, "username": account.username, "role": account.role}


def _load_account(stored: Any) -> AccountInfo | None:
    if not stored["found"]:
        return None
    return AccountInfo(guid=stored["guid"], username=stored["username"], role=stored["role"])


def normalise_entries(entries: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Configured names and GUIDs, split: (names as written, GUIDs lower-cased)."""
    names: list[str] = []
    guids: list[str] = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        if is_guid(entry):
            guids.append(entry.lower())
        else:
            names.append(entry)
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(guids))
