"""The neutral persona editor: pre-filled forms, import-validator errors, permissions,
optimistic locking, new and archive."""

from __future__ import annotations

import asyncio

from bot.editor import mapping_from_form
from bot.handlers import default_router
from bot.model import Buttons, Command, Form, Reply
from bot.router import Router
from bot.runtime import Runtime
from tests.conftest import command, make_settings

ADMIN = "U_ADMIN"


async def open_editor(router: Router, name: str, user: str = ADMIN) -> Reply:
    return await router.dispatch(command(router, f"edit {name}", user=user))


def submit(router: Router, form: Form, changes: dict[str, str], user: str = ADMIN) -> Command:
    base = command(router, "x", user=user)
    values = {f.name: f.value for f in form.fields} | dict(form.state) | changes
    return Command(base.user, base.conversation, form.submit_verb, "", "", "form", values)


async def test_the_editor_is_prefilled_with_the_current_version(
    router: Router, runtime: Runtime
) -> None:
    fiona = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert fiona is not None
    reply = await open_editor(router, "fiona")
    assert reply.kind == "form" and reply.form is not None
    values = {f.name: f.value for f in reply.form.fields}
    assert values["role"] == fiona.spec.role
    assert values["demographic.job_titles"].splitlines() == list(fiona.spec.demographic.job_titles)
    employees = fiona.spec.firmographic.employees
    assert employees is not None
    assert values["firmographic.employees.min"] == str(employees.min)
    assert reply.form.state == {"mode": "edit", "revision": "1", "key": "finance-fiona"}
    # submitting the unchanged form round-trips to the same persona: nothing to save
    assert mapping_from_form(values, fiona.spec) == fiona.spec.to_dict()


async def test_a_valid_save_writes_a_revision_and_shows_the_card(
    router: Router, runtime: Runtime
) -> None:
    form = (await open_editor(router, "fiona")).form
    assert form is not None
    reply = await router.dispatch(
        submit(router, form, {"firmographic.employees.max": "5000", "goals": "Close in 3 days"})
    )
    assert reply.kind == "card" and "revision 2" in reply.summary
    saved = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert saved is not None and saved.spec.goals == ("Close in 3 days",)
    changes = runtime.store.history(runtime.default_org_id, "finance-fiona")[0].changes
    assert set(changes) == {"firmographic.employees", "goals"}
    assert "5,000" in str(reply.blocks)  # the card shows the change


async def test_invalid_input_gets_the_importers_messages_next_to_the_field(
    router: Router, runtime: Runtime
) -> None:
    form = (await open_editor(router, "fiona")).form
    assert form is not None
    reply = await router.dispatch(
        submit(
            router,
            form,
            {
                "firmographic.employees.min": "9000",
                "firmographic.employees.max": "10",
                "photo_url": "http://insecure.example/x.png",
                "review_every_days": "ninety",
                "role": "",
            },
        )
    )
    assert reply.kind == "form" and reply.form is not None
    errors = reply.form.errors
    assert "greater than max" in errors["firmographic.employees.min"]
    assert "https" in errors["photo_url"]
    assert "whole number" in errors["review_every_days"]
    assert "role" in errors
    # the user's input is kept in the form, and nothing was saved
    assert {f.name: f.value for f in reply.form.fields}["photo_url"].startswith("http://")
    assert runtime.store.history(runtime.default_org_id, "finance-fiona")[0].number == 1


async def test_only_owners_and_admins_may_edit(router: Router, runtime: Runtime) -> None:
    refused = await open_editor(router, "fiona", user="U_SOMEONE")
    assert refused.kind == "error" and "owner" in refused.summary
    # a forged submission is refused too
    form = (await open_editor(router, "fiona")).form
    assert form is not None
    forged = await router.dispatch(submit(router, form, {"summary": "pwned"}, user="U_SOMEONE"))
    assert forged.kind == "error"
    fiona = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert fiona is not None and fiona.spec.summary != "pwned"


async def test_two_concurrent_saves_one_wins_one_is_asked_to_reload(
    router: Router, runtime: Runtime
) -> None:
    first = (await open_editor(router, "fiona")).form
    second = (await open_editor(router, "fiona")).form
    assert first is not None and second is not None
    ok = await router.dispatch(submit(router, first, {"summary": "First editor's summary"}))
    stale = await router.dispatch(submit(router, second, {"summary": "Second editor's summary"}))
    assert ok.kind == "card"
    assert stale.kind == "error" and "changed since you opened" in stale.summary
    fiona = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert fiona is not None and fiona.spec.summary == "First editor's summary"


async def test_admins_create_and_archive_personas(router: Router, runtime: Runtime) -> None:
    member = await router.dispatch(command(router, "new", user="U_SOMEONE"))
    assert member.kind == "error"
    form = (await router.dispatch(command(router, "new", user=ADMIN))).form
    assert form is not None and form.state["mode"] == "new"
    duplicate = await router.dispatch(
        submit(router, form, {"key": "finance-fiona", "name": "X", "role": "R", "summary": "S"})
    )
    assert duplicate.form is not None and "already exists" in duplicate.form.errors["key"]
    created = await router.dispatch(
        submit(
            router,
            form,
            {"key": "sales-sally", "name": "Sales Sally", "role": "VP Sales", "summary": "Sells."},
        )
    )
    assert created.kind == "card" and created.persona_key == "sales-sally"
    assert (await router.dispatch(command(router, "sally"))).persona_key == "sales-sally"
    archived = await router.dispatch(command(router, "archive sally", user=ADMIN))
    assert "archived" in archived.summary
    gone = await router.dispatch(command(router, "sally"))
    assert gone.persona_key is None
    assert runtime.store.history(runtime.default_org_id, "sales-sally")[0].action == "archived"


async def test_inputs_a_platform_could_not_show_keep_their_saved_values(
    router: Router, runtime: Runtime
) -> None:
    fiona = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert fiona is not None and fiona.spec.background and fiona.spec.goals
    form = (await open_editor(router, "fiona")).form
    assert form is not None
    # The platform left Story and Goals out (too long to show) and said so: both are kept.
    kept = await router.dispatch(
        submit(
            router,
            form,
            {"background": "", "goals": "", "unshown": "background,goals", "keywords": "audit"},
        )
    )
    assert kept.kind == "card"
    saved = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert saved is not None and saved.spec.keywords == ("audit",)
    assert (saved.spec.background, saved.spec.goals) == (fiona.spec.background, fiona.spec.goals)
    # An input shown and emptied is removed.
    form = (await open_editor(router, "fiona")).form
    assert form is not None
    await router.dispatch(submit(router, form, {"background": ""}))
    emptied = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert emptied is not None and emptied.spec.background is None


async def test_each_section_heading_comes_once(router: Router) -> None:
    form = (await open_editor(router, "fiona")).form
    assert form is not None
    sections = [f.section for f in form.fields if f.section]
    assert len(sections) == len(set(sections))


async def test_owners_and_admins_get_an_edit_button_on_the_card(router: Router) -> None:
    def verbs(reply: Reply) -> list[str]:
        return [
            b.verb for block in reply.blocks if isinstance(block, Buttons) for b in block.buttons
        ]

    assert "edit" in verbs(await router.dispatch(command(router, "fiona", user=ADMIN)))
    assert "edit" not in verbs(await router.dispatch(command(router, "fiona", user="U_SOMEONE")))
    form = (await open_editor(router, "fiona")).form
    assert form is not None
    saved = await router.dispatch(submit(router, form, {"keywords": "audit"}))
    assert "edit" in verbs(saved)  # the editor may edit again from the saved card


async def test_truly_concurrent_saves_never_collide_on_either_database(db_url: str) -> None:
    """Both saves run at once in the database thread pool: on PostgreSQL the second waits
    for the first and is asked to reload (not an error about the revision number)."""
    runtime = Runtime.open(make_settings(db_url, PERSONA_BOT_ADMINS=ADMIN), seed=True)
    runtime.home_workspaces["slack"] = {"T1"}
    router = default_router(runtime)
    try:
        for attempt in range(5):
            first = (await open_editor(router, "fiona")).form
            second = (await open_editor(router, "fiona")).form
            assert first is not None and second is not None
            replies = await asyncio.gather(
                router.dispatch(submit(router, first, {"summary": f"First, take {attempt}."})),
                router.dispatch(submit(router, second, {"summary": f"Second, take {attempt}."})),
            )
            assert sorted(r.kind for r in replies) == ["card", "error"]
            assert any("changed since you opened" in r.summary for r in replies)
        history = runtime.store.history(runtime.default_org_id, "finance-fiona")
        assert [r.number for r in history][:5] == [6, 5, 4, 3, 2]
    finally:
        runtime.close()
