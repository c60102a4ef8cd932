"""The Compare grid's API (`studio.compare`), on both databases: a comparison is validated whole before
anything is written, queued as one batch within the budget, fills its cells without touching the
gallery, keeps a cell as a portrait with its recipe, retries a failed cell, exports a labelled sheet,
and is deleted with its rows and images (also with its character); `studio gc` sees no orphans."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from core.errors import (BudgetExceeded, CostNotConfirmed, Forbidden, InvalidInput, InvalidSetting, ModelNotAvailable,
                         NotFound, ProviderError)
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec
from core.studio import Studio
from providers.offline import OfflineProvider
from tests.conftest import make_settings


class GridProvider(OfflineProvider):
    """A second provider with a priced model and a model that fails while `failing` is set."""

    id = "grid"
    display_name = "Grid"
    failing = True

    def default_models(self) -> list[ModelSpec]:
        return [ModelSpec(model_key="grid/priced", display_name="Priced", priority=-200,
                          capabilities=Capabilities(price_per_image=0.30)),
                ModelSpec(model_key="grid/flaky", display_name="Flaky", priority=-300,
                          capabilities=Capabilities(supports_seed=False))]

    async def generate(self, request):
        if request.model_key == "grid/flaky" and type(self).failing:
            raise ProviderError("the flaky model refused this prompt", retryable=False)
        return await super().generate(request)


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register(GridProvider)


@pytest.fixture
def grid(tmp_path, db_env):
    GridProvider.failing = True
    studio = Studio.open(settings=make_settings(tmp_path / "home", db_env), plugins=[Plugin()], retry_base=0.01)
    yield studio
    studio.close()


@pytest.fixture
def mia(grid):
    return grid.characters.create({"name": "Mia", "description": "A cheerful barista with red hair."})


def _ids(studio: Studio) -> dict[str, str]:
    return {m.model_key: m.id for m in studio.models.list()}


def _wait(studio: Studio, comparison):
    studio.jobs.wait([c.job_id for c in comparison.items], timeout=60)
    return studio.compare.get(comparison.id)


def _count(studio: Studio, table: str) -> int:
    return studio.ctx.db.scalar(f"SELECT count(*) FROM {table}")


def test_a_grid_of_prompts_models_and_seeds_fills_in_without_touching_the_gallery(grid, mia):
    ids = _ids(grid)
    spec = {"character_id": mia.id, "prompts": ["in the rain", "at the beach", "on a rooftop"],
            "models": ["offline/preview", ids["grid/priced"]], "seeds": [7, 8]}
    plan = grid.compare.plan(spec)
    assert plan.cells == 12 and [m.name for m in plan.models] == ["Offline preview", "Priced"]
    assert plan.estimated_cost == pytest.approx(3 * 2 * 0.30) and plan.unpriced == ["Offline preview"]
    assert _count(grid, "jobs") == 0 and _count(grid, "comparisons") == 0  # planning writes nothing
    done = _wait(grid, grid.compare.run(spec, confirm=True))
    assert [c.status for c in done.items] == ["completed"] * 12
    by_place = {(c.prompt_index, c.model_index, c.seed_index): c for c in done.items}
    assert len(by_place) == 12
    cell = by_place[(2, 1, 0)]
    assert cell.seed == 7 and cell.model_name == "Priced" and cell.recipe.prompt == "on a rooftop"
    assert "on a rooftop" in cell.recipe.final_prompt and cell.recipe.seed == 7 and cell.cost == pytest.approx(0.30)
    assert grid.portraits.list(mia.id).total == 0 and grid.characters.get(mia.id).primary_portrait_id is None
    assert Image.open(io.BytesIO(grid.images.read(cell.image_key))).size == (1024, 1024)
    assert all(c.estimated_cost is None for c in done.items if c.model_index == 0)
    # Seeds differ in the image, the same seed and prompt on the same model do not differ between cells.
    a, b = by_place[(0, 0, 0)], by_place[(0, 0, 1)]
    assert grid.images.read(a.image_key) != grid.images.read(b.image_key)
    [summary] = grid.compare.list(mia.id)
    assert summary.id == done.id and summary.cells == 12


def test_prompt_search_replace_makes_one_variant_per_phrase(grid, mia):
    plan = grid.compare.plan({"character_id": mia.id, "prompts": ["wearing a red coat"],
                              "replace": ["red coat", "blue scarf", "green hat"], "seeds": [1]})
    assert [p.text for p in plan.prompts] == ["wearing a red coat", "wearing a blue scarf", "wearing a green hat"]
    assert plan.cells == 3


@pytest.mark.parametrize("bad, field", [
    ({"prompts": ["a", "b"], "replace": ["a", "c"]}, "replace"),
    ({"prompts": ["wearing a hat"], "replace": ["coat", "scarf"]}, "replace"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"seeds": list(range(9))}, "seeds"),
    ({"prompts": ["a", "", "c"]}, "prompts"),  # an empty variant among others: the same cell twice
    ({"prompts": ["a", " a "]}, "prompts"),
    ({"seeds": [-1]}, "seeds.0"),
    ({"prompts": [f"p{i}" for i in range(8)], "seeds": list(range(7))}, "cells"),  # 56 cells > 48
    ({"prompts": ["x" * 201]}, "prompts.0.text"),
    ({"colour": "red"}, "colour"),
])
def test_bad_input_is_refused_before_anything_is_written(grid, mia, bad, field):
    with pytest.raises(InvalidInput) as refused:
        grid.compare.run({"character_id": mia.id, **bad})
    assert field in refused.value.errors
    assert _count(grid, "jobs") == 0 and _count(grid, "comparisons") == 0


def test_models_must_be_active_and_the_character_must_be_the_callers(grid, mia):
    ids = _ids(grid)
    grid.models.set_active(ids["grid/priced"], False)
    with pytest.raises(ModelNotAvailable):
        grid.compare.run({"character_id": mia.id, "models": ["offline/preview", ids["grid/priced"]]})
    with pytest.raises(ModelNotAvailable):
        grid.compare.plan({"character_id": mia.id, "models": ["no/such-model"]})
    bare = grid.characters.create({"name": "Bare"})
    with pytest.raises(InvalidInput) as refused:
        grid.compare.run({"character_id": bare.id})
    assert "description" in refused.value.errors
    public = grid.characters.create({"name": "Pub", "description": "Public.", "is_public": True})
    bob = grid.as_user("bob")
    with pytest.raises(Forbidden):
        bob.compare.run({"character_id": public.id})
    private = grid.characters.create({"name": "Priv", "description": "Private."})
    with pytest.raises(NotFound):
        bob.compare.plan({"character_id": private.id})
    assert _count(grid, "jobs") == 0 and _count(grid, "comparisons") == 0


def test_a_costly_comparison_needs_confirmation_and_the_budget_counts_it_whole(grid, mia):
    ids = _ids(grid)
    spec = {"character_id": mia.id, "prompts": ["a", "b"], "models": [ids["grid/priced"]], "seeds": [1, 2]}
    assert grid.compare.plan(spec).needs_confirmation  # 4 x 0.30 > the default 1 USD
    with pytest.raises(CostNotConfirmed, match=r"\$1\.20"):
        grid.compare.run(spec)
    assert _count(grid, "jobs") == 0
    alice = grid.as_user("alice")
    grid.budgets.set("alice", 1.0)
    ada = alice.characters.create({"name": "Ada", "description": "An engineer."})
    with pytest.raises(BudgetExceeded):
        alice.compare.run({**spec, "character_id": ada.id}, confirm=True)
    assert _count(grid, "jobs") == 0 and _count(grid, "comparisons") == 0
    small = alice.compare.run({**spec, "character_id": ada.id, "seeds": [1]})  # 0.60: no confirmation, fits
    assert small.cells == 2


def test_confirm_threshold_setting(tmp_path):
    assert make_settings(tmp_path).compare_confirm_usd == 1.0
    assert make_settings(tmp_path, {"STUDIO_COMPARE_CONFIRM_USD": "none"}).compare_confirm_usd is None
    assert make_settings(tmp_path, {"STUDIO_COMPARE_CONFIRM_USD": "2.5"}).compare_confirm_usd == 2.5
    with pytest.raises(InvalidSetting, match="STUDIO_COMPARE_CONFIRM_USD"):
        make_settings(tmp_path, {"STUDIO_COMPARE_CONFIRM_USD": "lots"})


def test_a_failed_cell_shows_its_error_and_retries(grid, mia):
    ids = _ids(grid)
    done = _wait(grid, grid.compare.run({"character_id": mia.id, "models": ["offline/preview", ids["grid/flaky"]],
                                         "seeds": [3]}))
    ok, failed = done.items
    assert ok.status == "completed" and failed.status == "failed"
    assert "the flaky model refused this prompt" in failed.last_error and failed.image_key is None
    assert not failed.takes_seed and ok.takes_seed
    with pytest.raises(InvalidInput):
        grid.compare.keep(failed.job_id)
    GridProvider.failing = False
    assert grid.compare.retry(failed.job_id).status in ("queued", "running", "storing", "completed")
    again = _wait(grid, done)
    assert [c.status for c in again.items] == ["completed", "completed"] and again.items[1].image_key


def test_keep_makes_a_portrait_with_the_cells_recipe_and_set_primary(grid, mia, tmp_path):
    done = _wait(grid, grid.compare.run({"character_id": mia.id, "prompts": ["laughing", "serious"], "seeds": [5]}))
    first, second = done.items
    portrait = grid.compare.keep(first.job_id)
    assert grid.compare.keep(first.job_id).id == portrait.id  # kept once
    assert portrait.recipe.prompt == "laughing" and portrait.recipe.seed == 5 and portrait.prompt == "laughing"
    assert portrait.image_key != first.image_key  # its own copy: deleting the comparison keeps it
    assert grid.portraits.download(portrait.id)[0] == grid.images.read(first.image_key)
    assert grid.characters.get(mia.id).primary_portrait_id == portrait.id  # the first portrait, as usual
    primary = grid.compare.set_primary(second.job_id)
    assert primary.is_primary and grid.portraits.list(mia.id).total == 2
    again = grid.compare.get(done.id)
    assert [c.kept_portrait_id for c in again.items] == [portrait.id, primary.id]
    report = grid.maintenance.gc(grace_seconds=0)
    assert report.orphans == [] and report.missing == []
    grid.compare.delete(done.id)
    assert _count(grid, "comparison_cells") == 0 and _count(grid, "comparisons") == 0 and _count(grid, "jobs") == 0
    assert not grid.ctx.store.exists(first.image_key) and not grid.ctx.store.exists(first.thumbnail_key)
    assert grid.portraits.list(mia.id).total == 2 and grid.portraits.download(portrait.id)[0]
    assert grid.maintenance.gc(grace_seconds=0).orphans == []
    with pytest.raises(NotFound):
        grid.compare.get(done.id)


def test_the_sheet_is_one_png_with_a_row_per_prompt_and_a_column_per_model_and_seed(grid, mia):
    done = _wait(grid, grid.compare.run({"character_id": mia.id, "prompts": ["a", "b", "c"], "seeds": [1, 2]}))
    data, name = grid.compare.sheet(done.id)
    sheet = Image.open(io.BytesIO(data))
    assert sheet.format == "PNG" and name.startswith("mia-comparison-")
    one = Image.open(io.BytesIO(grid.compare.sheet(
        _wait(grid, grid.compare.run({"character_id": mia.id, "prompts": ["a"], "seeds": [1]})).id)[0]))
    assert sheet.width > one.width * 1.5 and sheet.height > one.height * 2  # 2 columns, 3 rows against 1 x 1


def test_deleting_the_character_deletes_its_comparisons_rows_and_images(grid, mia):
    done = _wait(grid, grid.compare.run({"character_id": mia.id, "seeds": [1, 2]}))
    keys = [k for c in done.items for k in (c.image_key, c.thumbnail_key)]
    assert all(grid.ctx.store.exists(k) for k in keys)
    grid.characters.delete(mia.id)
    assert _count(grid, "comparison_cells") == 0 and _count(grid, "comparisons") == 0
    assert not any(grid.ctx.store.exists(k) for k in keys)


def test_another_user_never_sees_or_acts_on_a_comparison(grid, mia):
    done = _wait(grid, grid.compare.run({"character_id": mia.id, "seeds": [1]}))
    [cell] = done.items
    bob = grid.as_user("bob")
    assert bob.compare.list() == []
    for act in (lambda: bob.compare.get(done.id), lambda: bob.compare.keep(cell.job_id),
                lambda: bob.compare.retry(cell.job_id), lambda: bob.compare.sheet(done.id),
                lambda: bob.compare.download(cell.job_id), lambda: bob.compare.delete(done.id),
                lambda: bob.images.read(cell.image_key)):
        with pytest.raises(NotFound):
            act()
    assert grid.compare.get(done.id).items[0].image_key == cell.image_key
