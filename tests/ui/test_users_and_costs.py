"""The Users page (admin), price fields on the Models page, the Duplicate button on the Characters
page, the portrait visibility toggle and one's own spend on the Queue page."""
from __future__ import annotations

import pytest
from ui_helpers import page, texts

from core.errors import Forbidden


def _done(studio, character_id: str, n: int = 1):
    jobs = studio.portraits.generate(character_id, n=n)
    return studio.jobs.wait([j.id for j in jobs], timeout=60)


def test_users_page_lists_budgets_and_statistics_and_sets_a_budget(at, studio):
    alice = studio.as_user("alice", display_name="Alice", email="alice@example.com")
    ada = alice.characters.create({"name": "Ada", "description": "An engineer."})
    _done(alice, ada.id, n=2)
    page(at, "users")
    assert not at.exception and not at.error
    body = texts(at)
    assert "Alice" in body and "alice@example" in body and "Statistics, all users" in body
    per_user = next(d.value for d in at.dataframe if "User" in d.value.columns)
    assert dict(zip(per_user["User"], per_user["Jobs"]))["alice"] == 2
    at.number_input(key="u.budget.alice").set_value(12.5)
    at.run()
    assert not at.error
    assert studio.budgets.get("alice").monthly_budget == 12.5 and studio.budgets.get("alice").overridden
    at.button(key="u.reset.alice").click()
    at.run()
    assert not studio.budgets.get("alice").overridden
    # The page's data is the facade's, which refuses a non-admin.
    with pytest.raises(Forbidden):
        alice.budgets.list()
    with pytest.raises(Forbidden):
        alice.stats(all_users=True)


def test_model_prices_are_edited_on_the_models_page(at, studio):
    model = studio.models.list()[0]
    page(at, "models")
    at.button(key=f"m.edit.{model.id}").click()
    at.run()
    at.number_input(key=f"m.{model.id}.price").set_value(0.04)
    at.number_input(key=f"m.{model.id}.price_mp").set_value(0.02)
    at.button(key=f"FormSubmitter:m.{model.id}.form-Save model").click()
    at.run()
    assert not at.error
    caps = studio.models.get(model.id).capabilities
    assert (caps.price_per_image, caps.price_per_megapixel) == (0.04, 0.02)
    # The list shows each model's price as budgets count it (the price per image wins), without opening Edit.
    other = next(m for m in studio.models.list() if m.id != model.id)
    studio.models.update(other.id, {"capabilities": {**other.capabilities.model_dump(), "price_per_megapixel": 0.5}})
    at.run()
    body = texts(at)
    assert "$0.04 an image" in body and "$0.50 a megapixel" in body


def test_duplicate_button_copies_another_users_public_character(at, studio):
    alice = studio.as_user("alice")
    olga = alice.characters.create({"name": "Olga", "description": "A baker.", "is_public": True,
                                    "appearance_tags": ["flour"]})
    at.query_params["character"] = olga.id
    at.run()
    button = at.button(key="duplicate_character")
    assert button.label == "Duplicate to my characters"
    button.click()
    at.run()
    assert not at.exception and not at.error
    [copy] = [c for c in studio.characters.list(mine_only=True).items]
    assert copy.id != olga.id and copy.name == "Olga (copy)" and copy.appearance_tags == ["flour"] and not copy.is_public
    assert at.session_state["selected_character_id"] == copy.id


def test_gallery_toggle_makes_a_portrait_private(at, studio):
    mia = studio.characters.create({"name": "Mia", "description": "A barista.", "is_public": True})
    [job] = _done(studio, mia.id)
    at.query_params["character"] = mia.id
    page(at, "portraits")
    at.button(key=f"view.{job.result_id}").click()  # the switch is in the lightbox
    at.run()
    toggle = at.toggle(key=f"view_public.{job.result_id}")
    assert toggle.value is True  # as its public character
    toggle.set_value(False)
    at.run()
    assert not at.error
    assert studio.portraits.get(job.result_id).is_public is False
    assert studio.as_user("bob").portraits.list(mia.id).total == 0


def test_queue_shows_ones_own_spend_and_budget(at, studio):
    mia = studio.characters.create({"name": "Mia", "description": "A barista."})
    _done(studio, mia.id, n=2)
    page(at, "queue")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Jobs"] == "2" and "Spend" in metrics
    assert "no budget limit" in texts(at)
