"""studio.assist: suggestions from the rest of the character, enhance all, limits and failures."""
from __future__ import annotations

import time

import pytest

from core.errors import AssistFailed, AssistRateLimited, InvalidInput, ModelNotAvailable
from tests.assist.conftest import SPARSE


def test_the_suggestion_is_asked_with_the_rest_of_the_character_and_the_forms_draft(open_studio, chat_fake):
    studio = open_studio(chat_fake.secrets())
    mia = studio.characters.create({**SPARSE, "appearance_tags": ["red hair"], "traits": "curious"})
    chat_fake.answer = "Mia thinks out loud and hums while she works."
    studio.assist.suggest(mia.id, "persona", draft={"mood": "mysterious", "first_message": "Hi there, regular!"})
    user = chat_fake.chats()[-1]["messages"][-1]["content"]
    for expected in ("Mia", SPARSE["description"], "red hair", "curious", "mysterious", "Hi there, regular!"):
        assert expected in user, expected
    system = chat_fake.chats()[-1]["messages"][0]["content"]
    assert "SFW" in system and "no sexual content" in system


def test_appearance_is_split_into_physical_traits_and_clothing(open_studio, chat_fake):
    studio = open_studio(chat_fake.secrets())
    mia = studio.characters.create({**SPARSE, "appearance_tags": ["red hair"], "clothing_tags": ["apron"]})
    chat_fake.answer = "Physical: green eyes, freckles, Red hair\nClothing: denim jacket, silver necklace"
    values = studio.assist.suggest(mia.id, "appearance").values
    assert values == {"appearance_tags": ["red hair", "green eyes", "freckles"],
                      "clothing_tags": ["apron", "denim jacket", "silver necklace"]}
    chat_fake.answer = "tall, leather boots, grey eyes, round glasses, wool coat"  # one list: split by clothing words
    values = studio.assist.suggest(mia.id, "appearance").values
    assert values["appearance_tags"] == ["red hair", "tall", "grey eyes"]
    assert values["clothing_tags"] == ["apron", "leather boots", "round glasses", "wool coat"]


def test_streaming_yields_pieces_before_the_suggestion(open_studio, chat_fake):
    studio = open_studio(chat_fake.secrets())
    mia = studio.characters.create(SPARSE)
    chat_fake.answer = "Mia grew up above her parents' bakery and never lost the habit of early mornings."
    stream = studio.assist.stream(mia.id, "description")
    pieces = list(stream)
    assert len(pieces) >= 3 and "".join(pieces) == chat_fake.answer
    assert stream.suggestion.values == {"description": chat_fake.answer}


def test_enhance_all_fills_only_the_empty_fields_and_saves_nothing(open_studio):
    studio = open_studio()  # the offline suggester
    mia = studio.characters.create({**SPARSE, "traits": "stubborn"})
    before = studio.characters.get(mia.id)
    suggestions = studio.assist.enhance_all(mia.id)
    assert [s.field for s in suggestions] == ["appearance", "persona", "first_message"]
    assert all(s.offline and s.model_name == "Offline suggester" for s in suggestions)
    assert all(any(s.values.values()) for s in suggestions)
    assert studio.characters.get(mia.id) == before
    studio.characters.update(mia.id, {k: v for s in suggestions for k, v in s.values.items()})
    assert studio.assist.empty_fields(mia.id) == []


def test_a_bad_field_or_draft_is_refused_before_any_call(open_studio, chat_fake):
    studio = open_studio(chat_fake.secrets())
    mia = studio.characters.create(SPARSE)
    with pytest.raises(InvalidInput, match="field"):
        studio.assist.suggest(mia.id, "password")
    with pytest.raises(InvalidInput, match="mood"):
        studio.assist.suggest(mia.id, "persona", draft={"mood": "furious"})
    with pytest.raises(ModelNotAvailable):
        studio.assist.suggest(mia.id, "persona", model="no-such-model")
    assert chat_fake.count("submit") == 0


def test_the_per_user_rate_is_enforced_before_the_call(open_studio, chat_fake):
    studio = open_studio({**chat_fake.secrets(), "STUDIO_ASSIST_RATE": "2"})
    mia = studio.characters.create(SPARSE)
    studio.assist.suggest(mia.id, "persona")
    studio.assist.suggest(mia.id, "traits")
    with pytest.raises(AssistRateLimited, match=r"limit is 2"):
        studio.assist.suggest(mia.id, "description")
    assert chat_fake.count("submit") == 2
    offline = studio.assist.suggest(mia.id, "description", model="offline/suggester")  # local and free: not limited
    assert offline.offline
    other = studio.as_user("bob")  # another user has their own rate
    bobs = other.characters.create(SPARSE)
    other.assist.suggest(bobs.id, "persona")


def test_a_slow_text_model_fails_with_a_message_within_the_timeout(open_studio, chat_fake):
    studio = open_studio({**chat_fake.secrets(), "STUDIO_ASSIST_TIMEOUT": "0.5"})
    mia = studio.characters.create(SPARSE)
    chat_fake.fault("submit", hang=True)
    started = time.monotonic()
    with pytest.raises(AssistFailed, match=r"did not answer within 0.5 s; nothing was changed"):
        studio.assist.suggest(mia.id, "persona")
    assert time.monotonic() - started < 5
    assert studio.characters.get(mia.id).persona is None
    row = studio.ctx.db.fetchone("SELECT status, error FROM assist_calls")
    assert row["status"] == "failed" and "did not answer" in row["error"]


def test_a_failing_text_model_names_the_error(open_studio, chat_fake):
    studio = open_studio(chat_fake.secrets())
    mia = studio.characters.create(SPARSE)
    chat_fake.inject(500)
    with pytest.raises(AssistFailed, match=r"failed: .*error 500.*Nothing was changed"):
        studio.assist.suggest(mia.id, "persona")


def test_no_key_reaches_a_prompt_or_a_suggestion(open_studio, chat_fake):
    studio = open_studio(chat_fake.secrets())
    mia = studio.characters.create({**SPARSE, "description": f"Pasted by mistake: {chat_fake.key}"})
    chat_fake.answer = f"Mia keeps the key {chat_fake.key} under the till."
    suggestion = studio.assist.suggest(mia.id, "persona")
    assert chat_fake.key not in suggestion.text and chat_fake.key not in str(suggestion.values)
    body = chat_fake.requests("submit")[-1].body.decode()
    assert chat_fake.key not in body


def test_the_cli_suggests_and_saves_only_when_asked(tmp_path, capsys, monkeypatch):
    from core.cli import main
    from core.studio import Studio
    from tests.conftest import make_settings

    home = tmp_path / "home"
    monkeypatch.setenv("STUDIO_LOAD_PLUGINS", "")
    with Studio.open(settings=make_settings(home), start_runner=False) as studio:
        studio.characters.create(SPARSE)
    assert main(["--home", str(home), "assist", "suggest", "Mia", "persona"]) == 0
    out = capsys.readouterr()
    assert "Mia" in out.out and "offline suggester; not saved" in out.err
    with Studio.open(settings=make_settings(home), start_runner=False) as studio:
        assert studio.characters.list().items[0].id and studio.characters.get(
            studio.characters.list().items[0].id).persona is None
    assert main(["--home", str(home), "assist", "suggest", "Mia", "traits", "--save", "--json"]) == 0
    with Studio.open(settings=make_settings(home), start_runner=False) as studio:
        assert studio.characters.get(studio.characters.list().items[0].id).traits
    assert main(["--home", str(home), "assist", "suggest", "Mia", "password"]) == 2


@pytest.mark.parametrize("name, value", [("STUDIO_ASSIST_RATE", "many"), ("STUDIO_ASSIST_RATE", "-1"),
                                         ("STUDIO_ASSIST_TIMEOUT", "0"), ("STUDIO_ASSIST_TIMEOUT", "soon")])
def test_a_bad_assist_setting_names_its_variable(tmp_path, name, value):
    from core.config import Settings
    from core.errors import InvalidSetting

    with pytest.raises(InvalidSetting, match=name):
        Settings.from_env(home=tmp_path, env={name: value})
    assert Settings.from_env(home=tmp_path, env={name: "5"}).__getattribute__(
        "assist_rate" if name.endswith("RATE") else "assist_timeout") == 5
