from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.command import (
    PREFIX_MAX_LENGTH,
    Help,
    Lock,
    Pending,
    RequestOwn,
    Search,
    Seats,
    Status,
    UsageProblem,
    parse_command,
    unescape_slack,
)
from bot.slack.ui.messages import usage_problem_text

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reason(result: Help) -> str:
    """What the person is told was wrong, before the usage."""
    assert result.problem is not None
    return usage_problem_text(result.problem, result.typed)


def slack_escape(text: str) -> str:
    """What Slack does to command text before sending it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- examples ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "help", "HELP", "  Help  "])
def test_help_without_reason(text: str) -> None:
    assert parse_command(text) == Help()


@pytest.mark.parametrize("text", ["request", " Request ", "REQUEST"])
def test_request_alone_asks_for_your_own_account(text: str) -> None:
    assert parse_command(text) == RequestOwn()


@pytest.mark.parametrize("text", ["search", "SEARCH", "search   ", "Search \t "])
def test_search_without_prefix_explains(text: str) -> None:
    result = parse_command(text)
    assert isinstance(result, Help)
    assert result.problem is UsageProblem.SEARCH_WITHOUT_PREFIX
    assert "prefix" in reason(result)


def test_unknown_subcommand_is_named() -> None:
    result = parse_command("frobnicate jan")
    assert result == Help(UsageProblem.UNKNOWN_SUBCOMMAND, typed="frobnicate")
    assert reason(result) == "unknown subcommand `frobnicate`"


def test_unknown_subcommand_quote_is_short_and_printable() -> None:
    result = parse_command("x" * 500 + "\x07")
    assert isinstance(result, Help) and result.problem is UsageProblem.UNKNOWN_SUBCOMMAND
    assert len(reason(result)) < 80
    assert "\x07" not in reason(result)


def test_search_is_prefix_word_only() -> None:
    assert isinstance(parse_command("searchjan"), Help)


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("search jan", "jan"),
        ("SEARCH Jan", "Jan"),
        ("sEaRcH   jan  ", "jan"),
        ("search\tjan", "jan"),
        ("search jan de vries", "jan de vries"),
        ("search a  b", "a  b"),
        ("search a&amp;b", "a&b"),
        ("search &amp;lt;", "&lt;"),
        ("search &lt;b&gt;", "<b>"),
        ("search 50% /x #y +z =w", "50% /x #y +z =w"),
        ("search Ærøskøbing 李", "Ærøskøbing 李"),
        ("search *x* _y_ ~z~ `q`", "*x* _y_ ~z~ `q`"),
        ("search " + "a" * PREFIX_MAX_LENGTH, "a" * PREFIX_MAX_LENGTH),
    ],
)
def test_search_prefix_kept_exactly(text: str, prefix: str) -> None:
    assert parse_command(text) == Search(prefix=prefix)


def test_unescape_order() -> None:
    assert unescape_slack("&amp;lt;") == "&lt;"
    assert unescape_slack("&amp;amp;") == "&amp;"
    assert unescape_slack("&lt;&gt;&amp;") == "<>&"
    assert unescape_slack("&quot;&#39;") == "&quot;&#39;"  # only the three Slack escapes


def test_prefix_too_long() -> None:
    result = parse_command("search " + "a" * (PREFIX_MAX_LENGTH + 1))
    assert isinstance(result, Help) and result.problem is UsageProblem.PREFIX_TOO_LONG
    assert str(PREFIX_MAX_LENGTH) in reason(result)


@pytest.mark.parametrize("inner", ["a\x00b", "a\nb", "a\tb", "a\x7fb", "a\x85b", "a\x1bb"])
def test_control_characters_refused(inner: str) -> None:
    result = parse_command("search " + inner)
    assert isinstance(result, Help)
    assert result.problem is UsageProblem.PREFIX_HAS_CONTROL_CHARACTERS
    assert "control characters" in reason(result)


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("search &lt;@U123|bob&gt;", "bob"),
        ("search <@U123|bob>", "bob"),
        ("search &lt;mailto:a@b.c|a@b.c&gt;", "a@b.c"),
        ("search <https://x.example|x.example>", "x.example"),
        ("search <#C1|general>", "general"),
        ("search <foo|bar>", "<foo|bar>"),  # not a Slack token: searched as typed
        ("search bob <@U1>", "bob <@U1>"),  # a token inside a longer prefix is left alone
    ],
)
def test_slack_tokens_use_their_label(text: str, prefix: str) -> None:
    assert parse_command(text) == Search(prefix=prefix)


@pytest.mark.parametrize(
    "text", ["search <@U123>", "search &lt;@U123&gt;", "search <https://x>", "search <!here>"]
)
def test_slack_tokens_without_label_refused(text: str) -> None:
    result = parse_command(text)
    assert isinstance(result, Help) and result.problem is UsageProblem.PREFIX_IS_A_MENTION
    assert "mention" in reason(result)


def test_label_is_validated_too() -> None:
    assert isinstance(parse_command("search <@U1|" + "a" * 101 + ">"), Help)
    assert isinstance(parse_command("search <@U1|   >"), Help)


# --- properties ----------------------------------------------------------------------------------

any_text = st.text(max_size=4000)
escapes = st.sampled_from(["&amp;", "&lt;", "&gt;", "&amp;lt;", "<", ">", "&"])
noisy_text = st.lists(st.one_of(st.text(max_size=20), escapes), max_size=60).map("".join)


def _check_result(result: object, text: str | None = None) -> None:
    assert isinstance(result, Help | Search | RequestOwn | Pending | Status | Seats)
    if isinstance(result, Pending | Status | Seats) and text is not None:
        # Only the bare word asks for a list; anything after it is explained, not ignored.
        assert unescape_slack(text).strip().lower() == type(result).__name__.lower()
    if isinstance(result, RequestOwn) and text is not None:
        assert unescape_slack(text).strip().lower() == "request"
    if isinstance(result, Search):
        prefix = result.prefix
        assert prefix and prefix == prefix.strip()
        assert len(prefix) <= PREFIX_MAX_LENGTH
        assert not any(unicodedata.category(ch) == "Cc" for ch in prefix)
        # What the parser returns, typed again (and escaped by Slack), parses to the same thing.
        assert parse_command("search " + slack_escape(prefix)) == result
    elif isinstance(result, Help):
        assert result.problem is None or isinstance(reason(result), str)
        assert result.typed == "" or result.problem is not None


@PROPERTY
@given(text=any_text)
def test_any_text_never_raises(text: str) -> None:
    _check_result(parse_command(text), text)


@PROPERTY
@given(rest=st.one_of(any_text, noisy_text), word=st.sampled_from(["search", "SEARCH", "Search"]))
def test_search_text_never_raises(rest: str, word: str) -> None:
    _check_result(parse_command(f"{word} {rest}"))


@PROPERTY
@given(
    prefix=st.text(
        st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=PREFIX_MAX_LENGTH
    )
)
def test_valid_prefix_round_trips(prefix: str) -> None:
    prefix = prefix.strip()
    if not prefix or (prefix.startswith("<") and prefix.endswith(">")):
        return  # blank, or possibly a Slack token (covered by the examples)
    assert parse_command("search " + slack_escape(prefix)) == Search(prefix=prefix)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lock ana.lima Left the company", Lock("ana.lima", "Left the company", lock=True)),
        ("UNLOCK  ana.lima   Back\nfrom leave ", Lock("ana.lima", "Back\nfrom leave", lock=False)),
        ("lock", Help(UsageProblem.LOCK_WITHOUT_USERNAME, typed="lock")),
        ("unlock   ", Help(UsageProblem.LOCK_WITHOUT_USERNAME, typed="unlock")),
        ("lock ana.lima", Help(UsageProblem.LOCK_WITHOUT_REASON, typed="lock")),
        ("lock &lt;@U123&gt; left", Help(UsageProblem.LOCK_WITHOUT_USERNAME, typed="lock")),
        ("lock " + "a" * 101 + " why", Help(UsageProblem.PREFIX_TOO_LONG)),
    ],
)
def test_lock_and_unlock_take_an_exact_username_and_why(text: str, expected: object) -> None:
    assert parse_command(text) == expected
