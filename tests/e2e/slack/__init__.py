"""End-to-end tests of the Slack adapter: the real web app on 127.0.0.1, Slack's wire format."""
