"""Platform adapters: translate Slack, Teams and terminal events to neutral Commands and
render neutral Replies back (Block Kit, Adaptive Cards, plain text)."""
