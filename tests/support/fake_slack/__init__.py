"""The fake Slack: Web API, response_url endpoint and Socket Mode, on a loopback port."""

from tests.support.fake_slack.server import INSTANCES, FakeSlack, ResponsePost, SlackCall

__all__ = ["INSTANCES", "FakeSlack", "ResponsePost", "SlackCall"]
