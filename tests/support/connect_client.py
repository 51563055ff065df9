"""What the Connect client's tests share, in process (tests/unit/test_connect_client.py) and on a
port (tests/e2e/test_connect_client_on_a_port.py): a fake Connect with a small directory and a
known key, prefixes that must reach Connect exactly, and checks that no secret reaches an error."""

from __future__ import annotations

import traceback

from tests.support.fake_connect import FakeConnect

KEY = "sk-test-0123456789abcdefSECRET"
TIMEOUT = 0.3
ODD_PREFIXES = ["a b", "a&b=c", "x/y", "100%", "%20", "#tag", "a+b", "k=v", "é", "山田", " lead"]


def make_fake(**kwargs: object) -> FakeConnect:
    fake = FakeConnect(api_key=KEY, **kwargs)  # type: ignore[arg-type]
    fake.add_directory_user("julie", "Julie", "Martin", "julie@example.com")
    fake.add_directory_user("julie2", "Julie", "Dupont", "julie2@example.com")
    fake.add_directory_user("bob", "Bob", "Juliet", "bob@example.com")
    return fake


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in (KEY, *secrets):
        assert secret not in text


def error_text(exc: BaseException) -> str:
    """Everything a log handler could print about the error, chained causes included."""
    return f"{exc}\n{exc!r}\n" + "".join(traceback.format_exception(exc))
