"""The `studio` command, run in-process on a temporary home."""
from __future__ import annotations

import json

from core.cli import main


def run(capsys, home, *args):
    code = main(["--home", str(home), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_characters_models_templates_generate_jobs_stats(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_LOAD_PLUGINS", "")
    home = tmp_path / "home"
    code, out, _ = run(capsys, home, "characters", "create", "--name", "Mia", "--description", "A barista.", "--json")
    assert code == 0 and json.loads(out)["name"] == "Mia"
    code, out, _ = run(capsys, home, "characters", "list", "--json")
    assert code == 0 and json.loads(out)["total"] == 1
    code, out, _ = run(capsys, home, "characters", "show", "Mia")
    assert code == 0 and "description: A barista." in out
    code, out, _ = run(capsys, home, "generate", "--character", "Mia", "--n", "2", "--pose", "standing", "--wait", "--json")
    jobs = json.loads(out)
    assert code == 0 and [j["status"] for j in jobs] == ["completed", "completed"]
    code, out, _ = run(capsys, home, "jobs", "list", "--json")
    assert json.loads(out)["total"] == 2
    code, out, _ = run(capsys, home, "jobs", "show", jobs[0]["id"])
    assert code == 0 and "status: completed" in out
    code, out, _ = run(capsys, home, "stats", "--json")
    assert json.loads(out)["completed"] == 2
    code, out, _ = run(capsys, home, "models", "list")
    assert code == 0 and "offline/preview" in out
    code, out, _ = run(capsys, home, "templates", "list", "--json")
    assert len(json.loads(out)) >= 8
    code, out, _ = run(capsys, home, "characters", "delete", "Mia")
    assert code == 0 and "deleted Mia" in out


def test_bad_input_gives_one_line_and_a_non_zero_exit(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_LOAD_PLUGINS", "")
    code, _, err = run(capsys, tmp_path, "characters", "create", "--name", "x", "--gender", "robot")
    assert code == 2 and err.startswith("studio: gender:") and err.count("\n") == 1
    code, _, err = run(capsys, tmp_path, "characters", "show", "nobody")
    assert code == 2 and "No character" in err
    code, _, err = run(capsys, tmp_path, "generate", "--character", "nobody")
    assert code == 2


def test_portraits_list_and_reorder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_LOAD_PLUGINS", "")
    home = tmp_path / "home"
    run(capsys, home, "characters", "create", "--name", "Mia", "--description", "A barista.")
    code, out, _ = run(capsys, home, "generate", "--character", "Mia", "--n", "3", "--wait", "--json")
    assert code == 0
    code, out, _ = run(capsys, home, "portraits", "list", "Mia", "--json")
    before = [p["id"] for p in json.loads(out)["items"]]
    assert code == 0 and len(before) == 3
    code, out, _ = run(capsys, home, "portraits", "reorder", "Mia", before[2], before[1])
    assert code == 0 and out.index(before[2]) < out.index(before[1]) < out.index(before[0])
    code, out, _ = run(capsys, home, "portraits", "list", "Mia", "--json")
    assert [p["id"] for p in json.loads(out)["items"]] == [before[2], before[1], before[0]]
    code, _, err = run(capsys, home, "portraits", "reorder", "Mia", "nope")
    assert code == 2 and "not portraits of this character: nope" in err
    code, out, _ = run(capsys, home, "portraits", "list", "Mia", "--json")
    assert [p["id"] for p in json.loads(out)["items"]] == [before[2], before[1], before[0]]


def test_with_sign_in_the_command_acts_as_the_configured_account(tmp_path, capsys, monkeypatch):
    """STUDIO_CLI_USER names the account; it is an admin only where STUDIO_ADMINS names it."""
    monkeypatch.setenv("STUDIO_LOAD_PLUGINS", "")
    monkeypatch.setenv("STUDIO_AUTH", "proxy")
    monkeypatch.setenv("STUDIO_ADMINS", "lead@example.com")
    home = tmp_path / "home"
    code, _, err = run(capsys, home, "gc")
    assert code == 2 and "Only administrators" in err  # the local user is nobody's account with sign-in
    monkeypatch.setenv("STUDIO_CLI_USER", "dev@example.com")  # an account, but not one STUDIO_ADMINS names
    code, _, err = run(capsys, home, "gc")
    assert code == 2 and "Only administrators" in err
    code, out, _ = run(capsys, home, "characters", "create", "--name", "Dev's", "--description", "Mine.", "--json")
    assert code == 0 and json.loads(out)["owner"] == "dev@example.com"
    monkeypatch.setenv("STUDIO_CLI_USER", "lead@example.com")
    code, out, err = run(capsys, home, "gc")
    assert code == 0, err
    code, out, _ = run(capsys, home, "characters", "list", "--json")
    assert json.loads(out)["total"] == 0  # the lead's own list: dev's private character is not theirs
