"""Every sentence the Slack adapter itself says (the bot's own sentences are in bot.messages)."""

from __future__ import annotations

WORKING = "Working on it…"
STALE_BUTTON = (
    "That button no longer works (it belongs to an older version of persona-bot). "
    "Type `/persona help` to see what persona-bot can do."
)
UNREADABLE = (
    "Slack sent persona-bot a request it could not read. Please try again; if it keeps "
    "happening, tell whoever runs persona-bot."
)
NOT_INSTALLED = (
    "persona-bot is not installed in this Slack workspace any more. "
    "Ask a Slack admin to reinstall it."
)
SHARED_BY = "Shared by {name}"
MORE = "Show more"
SHARE = "Share in channel"
PART = "… part {page} of {pages}."
PART_CUT = "… shortened: the rest does not fit in one Slack message."
FEEDBACK_TITLE = "Not helpful?"
FEEDBACK_PROMPT = "{thanks} What is missing or wrong? The owner of {name} reads every comment."
FEEDBACK_LABEL = "Your comment (optional)"
FEEDBACK_SUBMIT = "Send"
FEEDBACK_CLOSE = "Skip"
MODAL_TITLE = "persona-bot"
MODAL_CLOSE = "Close"
HOME_INTRO = (
    "Your customer personas, where you work. Type `/persona NAME` anywhere, mention "
    "@persona-bot, or pick one below."
)
HOME_REVIEWS_TITLE = "Your personas due for review"
HOME_NO_REVIEWS = "None of your personas is due for review."
HOME_USAGE_TITLE = "Usage in the last {days} days"
HOME_MORE_PERSONAS = "… and {count} more: type `/persona list`."
EDITOR_CANCEL = "Cancel"
EDITOR_TITLE = "Persona editor"
EDITOR_SAVING = "Saving…"
EDITOR_NOT_OPENED = (
    "Slack did not open the editor (it must open within a few seconds of the command). "
    "Press the button to open it."
)
EDITOR_OPEN = "✏️ Open the editor"
EDITOR_PRESS = "Press the button to open the editor."
EDITOR_TOO_LONG = (
    "*{label}* is {length:,} characters long, more than a Slack input holds ({limit:,}), so it "
    "is not shown here and is kept as it is. Change it in the persona file instead "
    "(`persona-bot export`, edit, `persona-bot import`)."
)
EDITOR_PROBLEMS = "Nothing was saved: {count} problem(s) to fix, marked below."
