"""Chat REST through the Python bindings against cubeserver: a group's life, paged history,
reactions, search, unread counts and delete for everyone."""
import pytest

import cubechat

from conftest import new_user


async def user(make_client):
    return await new_user(make_client, "c")


async def test_group_flow(make_client):
    alice, a = await user(make_client)
    bob, b = await user(make_client)
    carol, c = await user(make_client)

    group = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.GROUP, name="Team", occupants_ids=[b.id]))
    assert group.kind == cubechat.DialogType.GROUP and sorted(group.occupants_ids) == sorted([a.id, b.id])
    group = await alice.update_dialog(group.id, cubechat.DialogUpdate(name="Team 2", add_occupants=[c.id]))
    assert group.name == "Team 2" and c.id in group.occupants_ids

    # 250 messages with distinct date_sent, then page backwards by date_sent.
    base = 1_700_000_000
    for i in range(250):
        await alice.create_message(cubechat.NewMessage(dialog_id=group.id, body=f"message number {i}",
                                                       date_sent=base + i, custom={"seq": str(i)}))
    seen, before = [], None
    for _ in range(10):
        filters = [cubechat.Filter(field="date_sent", op=cubechat.FilterOp.LT, value=str(before))] if before else []
        page = await bob.history(group.id, cubechat.ListParams(filters=filters, limit=100, sort_by="date_sent",
                                                                sort_descending=True), False)
        if not page:
            break
        seen.extend(page)
        before = page[-1].date_sent
    assert [m.custom["seq"] for m in seen] == [str(i) for i in reversed(range(250))]

    counts = await bob.unread_counts([group.id])
    assert counts.per_dialog[group.id] == 250

    last = seen[0]
    await bob.add_reaction(last.id, "👍")
    await carol.add_reaction(last.id, "🔥")
    await carol.replace_reaction(last.id, "👍", "🔥")
    assert sorted((await alice.reactions(last.id))["👍"]) == sorted([b.id, c.id])

    found = await bob.search(cubechat.SearchQuery(text="number 249"))
    assert [m.id for m in found.messages] == [last.id]
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await bob.search(cubechat.SearchQuery(text="abc"))

    result = await bob.delete_messages([last.id], True)
    assert result.no_permission == [last.id]
    result = await alice.delete_messages([last.id], True)
    assert result.deleted == [last.id]
    newest = await carol.history(group.id, cubechat.ListParams(limit=1, sort_by="date_sent", sort_descending=True), False)
    assert newest[0].custom["seq"] == "248"

    with pytest.raises(cubechat.ChatError.Forbidden):
        await bob.update_dialog(group.id, cubechat.DialogUpdate(remove_occupants=[c.id]))
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id, c.id]))
    deleted = await alice.delete_dialogs([group.id], True)
    assert deleted.deleted == [group.id]
