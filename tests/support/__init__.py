"""What the tests share: fakes, request builders, the bot under test, flows. Never tests."""
