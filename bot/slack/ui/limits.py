"""What Slack accepts in a message, a view and their parts (see /work/shared/slack-platform.md)."""

from __future__ import annotations

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ID = 255
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_BLOCKS_JSON = 12_000
# What the renderers aim for: leaves a margin under MAX_BLOCKS_JSON for a caller's small additions.
BLOCKS_JSON_BUDGET = 11_000
