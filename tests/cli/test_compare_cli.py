"""`studio compare`: run a grid and wait, show, list, write the sheet, keep a cell, delete; bad input is one line."""
from __future__ import annotations

import io
import json

from PIL import Image

from tests.core.test_cli import run


def test_run_show_sheet_keep_and_delete(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_LOAD_PLUGINS", "")
    home = tmp_path / "home"
    assert run(capsys, home, "characters", "create", "--name", "Mia", "--description", "A barista.")[0] == 0
    sheet = tmp_path / "grid.png"
    code, out, err = run(capsys, home, "compare", "run", "--character", "Mia", "--prompt", "in the rain",
                         "--prompt", "at dawn", "--seed", "3", "--seed", "4", "--wait", "--sheet", str(sheet), "--json")
    assert code == 0, err
    grid = json.loads(out)
    assert [c["status"] for c in grid["items"]] == ["completed"] * 4
    assert sorted({c["seed"] for c in grid["items"]}) == [3, 4]
    assert Image.open(io.BytesIO(sheet.read_bytes())).format == "PNG"
    code, out, _ = run(capsys, home, "compare", "show", grid["id"])
    assert code == 0 and "in the rain" in out and "at dawn" in out and out.count("completed") == 4
    code, out, _ = run(capsys, home, "compare", "list", "--json")
    assert [c["id"] for c in json.loads(out)] == [grid["id"]]
    code, out, _ = run(capsys, home, "portraits", "list", "Mia", "--json")
    assert json.loads(out)["total"] == 0  # cells are not portraits until kept
    cell = grid["items"][0]["job_id"]
    code, out, err = run(capsys, home, "compare", "keep", cell, "--primary")
    assert code == 0 and "kept as portrait" in out and "(primary)" in out, err
    code, out, _ = run(capsys, home, "portraits", "list", "Mia", "--json")
    assert json.loads(out)["total"] == 1
    code, out, _ = run(capsys, home, "compare", "delete", grid["id"])
    assert code == 0 and "deleted comparison" in out
    code, _, err = run(capsys, home, "compare", "show", grid["id"])
    assert code == 2 and "No comparison" in err


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_LOAD_PLUGINS", "")
    home = tmp_path / "home"
    run(capsys, home, "characters", "create", "--name", "Mia", "--description", "A barista.")
    code, _, err = run(capsys, home, "compare", "run", "--character", "Mia", *[a for i in range(50) for a in ("--seed", str(i))])
    assert code == 2 and err.startswith("studio: ") and "at most" in err and err.count("\n") == 1
    code, _, err = run(capsys, home, "compare", "run", "--character", "Nobody")
    assert code == 2 and "No character" in err
