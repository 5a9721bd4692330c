"""The usage verbs in chat: stats, deal outcomes, feedback, the dashboard link, the digest."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from sqlalchemy import select

from bot.dashboard import verify
from bot.model import Button, Buttons, Command, Reply, Text
from bot.notify import DeliveryError, Recipient
from bot.plaintext import plain_text
from bot.router import Router
from bot.runtime import Runtime
from bot.summaries import digest_reply, parse_days
from persona_store.app_secrets import get_or_create_secret
from persona_store.models import Deal, UsageEvent
from persona_store.summary import summarize_days
from tests.conftest import command


async def ask(router: Router, text: str, **kw: str) -> Reply:
    return await router.dispatch(command(router, text, **kw))


def press(router: Router, button: Button, user: str = "U1") -> Command:
    base = command(router, "x", user=user)
    return Command(base.user, base.conversation, button.verb, button.args, button.label, "button")


async def test_stats_shows_the_full_summary_to_managers_only(
    router: Router, runtime: Runtime
) -> None:
    await ask(router, "fiona", user="U1")
    await ask(router, "fiona", user="U2", channel="C2")
    await ask(router, "carlos", user="U2")
    await ask(router, "pirate captain", user="U3")
    await ask(router, "list", user="U4")
    await ask(router, "feedback fiona needs EMEA examples", user="U1")
    member = await ask(router, "stats")
    assert member.kind == "error" and "managers and admins" in member.summary
    reply = await ask(router, "stats 7", user="U_ADMIN")
    assert reply.kind == "stats"
    data = reply.data
    personas = {p["key"]: p for p in data["personas"]}  # type: ignore[attr-defined]
    assert personas["finance-fiona"]["lookups"] == 2 and personas["finance-fiona"]["users"] == 2
    assert data["knowledge_gaps"]["groups"][0]["text"] == "pirate captain"  # type: ignore[index]
    assert data["users"] == 4 and data["persona_users"] == 2  # U1, U2 (feedback is not a use)
    text = plain_text(reply)
    assert "Persona usage, last 7 days" in text and "Adoption: 50%" in text
    assert "“pirate captain” ×1" in text
    assert "Finance Fiona: 👍 0 👎 0 (score +0), 1 comment;" in text
    assert "needs EMEA examples" in text
    assert "Correlation, not causation" in text
    assert (await ask(router, "stats lots", user="U_ADMIN")).kind == "error"


def test_days_are_parsed_politely() -> None:
    assert parse_days("") == 30 and parse_days("7d") == 7 and parse_days("90 days") == 90


async def test_deal_outcomes_from_chat(router: Router, runtime: Runtime) -> None:
    await ask(router, "fit D-1042: Series B fintech, 300 staff, the CFO worries about audit")
    reply = await ask(router, "deal D-1042 won $12k")
    assert "Deal D-1042 is won" in reply.summary
    text = plain_text(reply)
    assert "Amount:" in text and "$12k" in text and "Finance Fiona (fit)" in text
    shown = await ask(router, "deal D-1042")
    assert shown.data["outcome"] == "won" and shown.data["amount"] == 12000.0
    lost = await ask(router, "deal D-77 lost")
    assert "Personas used: none" in plain_text(lost)
    for bad, words in (
        ("deal", "Record an outcome"),
        ("deal D-1 maybe", "`won`, `lost` or `open`"),
        ("deal D-1 won lots", "not an amount"),
        ("deal <script> won", "not a deal id"),
        ("deal D-404", "No deal D-404"),
    ):
        answer = await ask(router, bad)
        assert answer.kind == "error" and words in answer.summary, bad
    with runtime.store.session() as s:
        deals = {r[0]: r[1] for r in s.execute(select(Deal.external_id, Deal.outcome))}
    assert deals == {"D-1042": "won", "D-77": "lost"}
    runtime.usage.flush()
    with runtime.store.session() as s:
        deal_ids = s.scalars(select(UsageEvent.deal_id).where(UsageEvent.command == "deal"))
        assert "D-1042" in set(deal_ids)


async def test_thumbs_and_comments_reach_the_summary(router: Router, runtime: Runtime) -> None:
    card = await ask(router, "fiona")
    buttons = [b for block in card.blocks if isinstance(block, Buttons) for b in block.buttons]
    up = next(b for b in buttons if b.args.endswith(" up"))
    down = next(b for b in buttons if b.args.endswith(" down"))
    await router.dispatch(press(router, up, "U1"))
    await router.dispatch(press(router, up, "U2"))
    await router.dispatch(press(router, down, "U3"))
    await ask(router, "feedback fiona objections are out of date")
    summary = summarize_days(runtime.engine, runtime.default_org_id, 1, runtime.clock())
    (fiona,) = summary.feedback
    assert (fiona.key, fiona.up, fiona.down, fiona.score, fiona.comments) == (
        "finance-fiona",
        2,
        1,
        1,
        1,
    )
    assert fiona.latest[0].text == "objections are out of date"


class FakeNotifier:
    platform = "slack"

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[Recipient, Reply]] = []
        self.fail = fail

    async def send(self, recipient: Recipient, reply: Reply) -> str:
        if self.fail:
            raise DeliveryError("slack is down")
        self.sent.append((recipient, reply))
        return "m1"


def link_of(reply: Reply) -> str:
    return str(reply.data["url"])


async def test_dashboard_link_goes_privately_to_managers(router: Router, runtime: Runtime) -> None:
    refused = await ask(router, "dashboard")
    assert refused.kind == "error" and "managers and admins" in refused.summary
    reply = await ask(router, "dashboard", user="U_ADMIN")
    assert reply.ephemeral and "valid 24 hours" in plain_text(reply)
    url = urlparse(link_of(reply))
    assert url.path == "/dashboard" and url.netloc == "127.0.0.1:3978"
    token = parse_qs(url.query)["t"][0]
    secret = get_or_create_secret(runtime.engine, "dashboard")
    assert verify(secret, token, runtime.clock()) == runtime.default_org_id

    notifier = FakeNotifier()
    runtime.notifiers["slack"] = notifier
    dm = await ask(router, "dashboard 30", user="U_ADMIN")
    assert "direct message" in dm.summary and "http" not in dm.summary
    ((recipient, private),) = notifier.sent
    assert recipient.user_id == "U_ADMIN" and recipient.org_id == runtime.default_org_id
    assert "days=30" in link_of(private)

    runtime.notifiers["slack"] = FakeNotifier(fail=True)
    fallback = await ask(router, "dashboard", user="U_ADMIN")
    assert fallback.ephemeral and "/dashboard?t=" in link_of(fallback)


async def test_digest_is_compact_and_links_the_dashboard(router: Router, runtime: Runtime) -> None:
    for _ in range(3):
        await ask(router, "fiona")
    await ask(router, "pirate")
    runtime.usage.flush()
    summary = summarize_days(runtime.engine, runtime.default_org_id, 7, runtime.clock())
    reply = digest_reply(summary, "https://bot.example.com/dashboard?t=x")
    text = plain_text(reply)
    assert reply.kind == "stats" and not reply.ephemeral
    assert "3 persona lookups" in text and "Most used: Finance Fiona (3 lookups)" in text
    assert "“pirate” ×1" in text
    assert "https://bot.example.com/dashboard?t=x" in text and "Correlation" in text
    assert len(text.splitlines()) <= 12
    assert all(
        isinstance(b, Text) or b is reply.blocks[0] or b is reply.blocks[-1] for b in reply.blocks
    )
