"""The fake Slack: Web API, response_url endpoint and Socket Mode on a loopback port (see
server.py for what it does and how it is split)."""

from tests.support.fake_slack.response_urls import ResponsePost
from tests.support.fake_slack.server import INSTANCES, FakeSlack, SlackCall

__all__ = ["INSTANCES", "FakeSlack", "ResponsePost", "SlackCall"]
