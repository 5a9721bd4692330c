"""Logging set-up with a filter that keeps configured secrets out of every log line."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "[redacted]"
# The signature of a dashboard link (``ORG.EXPIRES.MAC``, see bot.dashboard): whoever holds
# the link reads the dashboard, so an access log or a message quoting one keeps only
# ORG.EXPIRES.
DASHBOARD_TOKEN = re.compile(r"\b(\d+\.\d+\.)[0-9a-fA-F]{64}\b")


class SecretFilter(logging.Filter):
    """Replace any configured secret (tokens, signing secrets, passwords) and the signature
    of any dashboard link in log records."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return DASHBOARD_TOKEN.sub(rf"\g<1>{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.clean(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets))
    root.handlers[:] = [handler]
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
