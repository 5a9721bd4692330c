"""The caches of the lookup path answer exactly what the uncached code would: a persona's card
is built once per catalog version and viewer kind, and never outlives a change (here, by
another replica or process, or by the clock moving to another day)."""

from __future__ import annotations

import itertools
from datetime import timedelta

from bot import cards
from bot.memo import RenderMemo
from bot.model import Buttons, Header, Reply, Text
from bot.router import Router
from bot.runtime import Runtime
from persona_store.lookup import MEMO_SIZE, PersonaIndex
from tests.conftest import command


async def ask(router: Router, text: str, **kw: str) -> Reply:
    return await router.dispatch(command(router, text, **kw))


async def test_a_card_is_built_once_and_equals_a_fresh_one(
    router: Router, runtime: Runtime
) -> None:
    first = await ask(router, "fiona")
    again = await ask(router, "finance fiona", user="U2")
    assert again is first
    fiona = (await runtime.catalogs.get(runtime.default_org_id)).get("finance-fiona")
    assert fiona is not None
    assert first == cards.persona_card(fiona, runtime.clock())


async def test_owners_and_others_get_their_own_card(router: Router, runtime: Runtime) -> None:
    member = await ask(router, "fiona")
    admin = await ask(router, "fiona", user="U_ADMIN")
    assert admin is not member

    def labels(reply: Reply) -> list[str]:
        return [
            b.label for block in reply.blocks if isinstance(block, Buttons) for b in block.buttons
        ]

    assert "✅ Mark reviewed" in labels(admin) and "✅ Mark reviewed" not in labels(member)


async def test_a_change_elsewhere_shows_after_the_version_check(
    router: Router, runtime: Runtime
) -> None:
    before = await ask(router, "fiona")
    # Another replica (or persona-bot import) marks it reviewed: only the version tells.
    earlier = runtime.clock() - timedelta(days=40)
    runtime.store.mark_reviewed(runtime.default_org_id, "finance-fiona", "x", now=earlier)
    assert await ask(router, "fiona") is before  # not checked again yet (every 2 s)
    runtime.catalogs._check_every = 0.0
    after = await ask(router, "fiona")
    assert "(40 days ago)" in str(after.blocks[-2]) and "(40 days" not in str(before.blocks[-2])


async def test_the_review_age_follows_the_clock(router: Router, runtime: Runtime) -> None:
    today = await ask(router, "fiona")
    now = runtime.clock()
    runtime.clock = lambda: now + timedelta(days=3)  # type: ignore[method-assign]
    later = await ask(router, "fiona")
    assert later is not today and later != today
    fiona = (await runtime.catalogs.get(runtime.default_org_id)).get("finance-fiona")
    assert fiona is not None
    assert later == cards.persona_card(fiona, now + timedelta(days=3))


async def test_lookup_answers_are_kept_per_index_and_bounded(runtime: Runtime) -> None:
    catalog = await runtime.catalogs.get(runtime.default_org_id)
    index = PersonaIndex(catalog.personas)
    assert index.lookup("finanse fiona") is index.lookup("finanse fiona")
    assert index.lookup("finanse fiona") == PersonaIndex(catalog.personas).lookup("finanse fiona")
    for i in range(MEMO_SIZE + 10):
        index.lookup(f"nobody {i}")
    assert len(index._memo) <= MEMO_SIZE


def test_render_memo_renders_each_reply_once_per_variant() -> None:
    renders = itertools.count()
    memo: RenderMemo[int] = RenderMemo(size=2)
    card = Reply("s", (Header("Fiona"),))
    same_content = Reply("s", (Header("Fiona"),))
    assert memo.get(card, "share", lambda: next(renders)) == 0
    assert memo.get(card, "share", lambda: next(renders)) == 0
    assert memo.get(card, "no share", lambda: next(renders)) == 1
    # Equal content is not enough: only the very same (immutable) object is a hit.
    assert memo.get(same_content, "share", lambda: next(renders)) == 2
    assert len(memo) == 2  # the least recently used entry went


def test_render_memo_never_confuses_a_new_reply_with_a_dead_one() -> None:
    memo: RenderMemo[str] = RenderMemo(size=1000)
    for i in range(500):
        reply = Reply(f"reply {i}", (Text(str(i)),))
        # A new object may get the address of one that was freed; the entry holds its
        # reply, so the address can not be reused while the entry exists.
        assert memo.get(reply, None, lambda reply=reply: reply.summary) == f"reply {i}"
