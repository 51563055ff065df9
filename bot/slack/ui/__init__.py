"""Block Kit renderers: Slack messages, modals and the Home tab as plain dicts, by surface.

Pure: no I/O, no Slack SDK calls. They take the workflow's values (requests, outcomes, refusals)
and match the workflow's enums exhaustively, so a new refusal or state left unrendered is a type
error.

Rendering rules (why: names, emails and justifications come from the directory or from people,
and must never format text, ping a channel or forge a link):

* Untrusted text (anything a person or the directory typed: names, usernames, emails, GUIDs,
  justifications, deny reasons, errors, search prefixes) goes only into `plain_text` objects with
  `"emoji": false`. Plain text renders no mrkdwn, no mentions and no links; with `emoji` off even
  `:shortcodes:` stay literal. Single-line fields have their line breaks and control characters
  replaced by spaces, so a name cannot fake a second line ("Approved by …") on a card.
* `mrkdwn` objects hold only the bot's own words, mentions of Slack users we know by id
  (`<@U123>`, validated), dates, and links whose URL the bot built (a Connect GUID is linked only
  when it looks like a GUID).
* The top-level `text` is the fallback Slack uses for notifications; Slack parses it as mrkdwn.
  It carries no mentions and only short untrusted values (a username, a prefix), passed through
  `escape_mrkdwn`: `&`, `<`, `>` become entities, and each of `*`, `_`, `~`, `` ` `` is wrapped in
  zero-width spaces, so it cannot open or close formatting. Justifications, reasons and errors are
  never put in a fallback.
* Limits (`limits.py`): ≤ 50 blocks a message (100 a view), ≤ 3,000 characters a text, button
  text ≤ 75 and value ≤ 2,000, modal title ≤ 24, private_metadata ≤ 3,000, and
  `len(json.dumps(blocks))` kept under `BLOCKS_JSON_BUDGET` (Slack refuses about 13k; `json.dumps`
  counts an emoji as 12 characters, so it errs on the safe side). Long fields are cut with an
  ellipsis, never refused.
"""
