"""One engine per home per process (issue 11, finding 6): a second `Studio.open` of the same home
shares the first one's engine (database, runner) instead of running a second runner on it."""
from __future__ import annotations

import pytest

from core.errors import StudioError
from core.studio import Studio
from tests.conftest import make_settings
from tests.engine.conftest import SENTINEL_KEY
from tests.engine.scripted import plugin


def test_the_same_home_opened_twice_runs_one_runner_and_sends_each_job_once(open_studio, server):
    first = open_studio()
    second = open_studio()
    character = first.characters.create({"name": "Ada", "description": "An engineer."})
    jobs = first.portraits.generate(character.id, n=4) + second.portraits.generate(character.id, n=4)
    done = second.jobs.wait([j.id for j in jobs], timeout=60)
    assert [j.status for j in done] == ["completed"] * 8, [j.last_error for j in done]
    assert sorted(server.submissions) == sorted(j.id for j in jobs)
    assert [server.submissions[j.id] for j in jobs] == [1] * 8
    assert first.portraits.list(character.id).total == 8
    assert second.engine is first.engine

    first.close()  # the engine stays while the second opening is open
    assert second.engine.runner.running
    [job] = second.jobs.wait([second.portraits.generate(character.id)[0].id], timeout=30)
    assert job.status == "completed" and server.submissions[job.id] == 1
    first.close()  # closing twice releases once
    assert second.engine.runner.running

    second.close()  # the last one stops the runner and closes the database
    assert not second.engine.runner.running
    again = open_studio()
    assert again.engine is not first.engine and again.portraits.list(character.id).total == 9


@pytest.mark.parametrize("db_backend", ["duckdb"])  # a file's path spellings: DuckDB only
def test_the_same_database_under_another_path_spelling_is_the_same_home(tmp_path, open_studio, server):
    first = open_studio()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "home")
    settings = make_settings(tmp_path / "home", {"SCRIPTED_URL": server.url, "SCRIPTED_KEY": SENTINEL_KEY,
                                                 "STUDIO_DB": str(link / ".." / "home" / "studio.duckdb")})
    with Studio.open(settings=settings, plugins=[plugin], retry_base=0.01) as other:
        assert other.engine is first.engine
    assert first.engine.runner.running  # the other opening's close did not stop it


def test_a_second_open_with_other_settings_is_refused_clearly(open_studio):
    first = open_studio()
    with pytest.raises(StudioError) as err:
        open_studio(STUDIO_MAX_ATTEMPTS="7")
    assert "already open in this process" in err.value.message and "max_attempts" in err.value.message
    assert SENTINEL_KEY not in err.value.message
    assert first.engine.runner.running  # the refused opening changed nothing


def test_a_second_open_may_start_the_runner_a_first_open_left_stopped(open_studio, server):
    first = open_studio(start_runner=False)
    character = first.characters.create({"name": "Ada", "description": "An engineer."})
    [job] = first.portraits.generate(character.id)
    second = open_studio()
    assert second.engine is first.engine and first.engine.runner.running
    [job] = first.jobs.wait([job.id], timeout=30)
    assert job.status == "completed" and server.submissions[job.id] == 1
