"""Costs and monthly budgets: a generation the rest of the month's budget does not cover is refused
before anything is submitted (a batch counts whole); a cost the provider reports wins over the
catalog price and counts against the budget; two batches at once cannot both pass a budget that
fits one of them."""
from __future__ import annotations

import threading

import pytest

from core.budgets import image_price
from core.errors import BudgetExceeded, Forbidden, InvalidInput, InvalidSetting
from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec
from core.studio import Studio
from providers.offline import OfflineProvider
from tests.conftest import make_settings


class PricedProvider(OfflineProvider):
    """A plugin whose models have catalog prices; it counts the requests it receives."""

    id = "priced"
    display_name = "Priced"
    calls: list[str] = []

    def default_models(self) -> list[ModelSpec]:
        return [ModelSpec(model_key="priced/flat", display_name="Flat", priority=10,
                          capabilities=Capabilities(price_per_image=0.10)),
                ModelSpec(model_key="priced/metered", display_name="Metered", priority=5,
                          capabilities=Capabilities(price_per_image=0.10))]

    async def generate(self, request):
        type(self).calls.append(request.job_id)
        result = await super().generate(request)
        if request.model_key == "priced/metered":
            result.cost = 0.25  # the service states what the image really cost
        return result


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register(PricedProvider)


@pytest.fixture
def open_priced(tmp_path, db_env):
    opened = []

    def _open(env: dict[str, str] | None = None, **kwargs) -> Studio:
        PricedProvider.calls = []
        studio = Studio.open(settings=make_settings(tmp_path / "home", {**db_env, **(env or {})}), plugins=[Plugin()],
                             retry_base=0.01, **kwargs)
        opened.append(studio)
        return studio

    yield _open
    for studio in opened:
        studio.close()


def _alice(studio: Studio, budget: float | None):
    alice = studio.as_user("alice")
    studio.budgets.set("alice", budget)
    return alice, alice.characters.create({"name": "Ada", "description": "An engineer."})


def test_a_batch_over_the_budget_is_refused_before_anything_is_submitted(open_priced):
    studio = open_priced()
    alice, ada = _alice(studio, 0.30)  # three images at $0.10
    with pytest.raises(BudgetExceeded) as refused:
        alice.portraits.generate(ada.id, n=4, model="priced/flat")
    assert "$0.40" in refused.value.message and "$0.30 left" in refused.value.message
    assert alice.jobs.list().total == 0 and PricedProvider.calls == []  # nothing queued, nothing sent
    jobs = alice.portraits.generate(ada.id, n=3, model="priced/flat")
    done = alice.jobs.wait([j.id for j in jobs], timeout=30)
    assert [j.status for j in done] == ["completed"] * 3 and len(PricedProvider.calls) == 3
    assert [j.cost for j in done] == [0.10] * 3
    assert alice.portraits.get(done[0].result_id).recipe["cost"] == 0.10
    status = alice.budgets.mine()
    assert status.spent == pytest.approx(0.30) and status.remaining == pytest.approx(0.0)
    with pytest.raises(BudgetExceeded, match=r"\$0\.00 left"):
        alice.portraits.generate(ada.id, model="priced/flat")
    assert alice.jobs.list().total == 3 and len(PricedProvider.calls) == 3
    # Another user's month is their own; an admin's larger budget lets alice go on.
    bob = studio.as_user("bob")
    bob_char = bob.characters.create({"name": "Bo", "description": "A sailor."})
    assert bob.portraits.generate(bob_char.id, n=4, model="priced/flat")
    studio.budgets.set("alice", 0.40)
    assert alice.portraits.generate(ada.id, model="priced/flat")


def test_a_reported_cost_wins_and_counts_against_the_budget(open_priced):
    studio = open_priced()
    alice, ada = _alice(studio, 0.30)
    [job] = alice.portraits.generate(ada.id, model="priced/metered")  # estimated at the catalog's $0.10
    [job] = alice.jobs.wait([job.id], timeout=30)
    assert job.cost == 0.25 and alice.portraits.get(job.result_id).recipe["cost"] == 0.25
    assert alice.budgets.mine().spent == pytest.approx(0.25)
    with pytest.raises(BudgetExceeded, match=r"\$0\.05 left"):
        alice.portraits.generate(ada.id, model="priced/metered")
    assert len(PricedProvider.calls) == 1


def test_queued_jobs_count_until_they_finish_and_the_default_budget_applies(open_priced):
    studio = open_priced({"STUDIO_DEFAULT_BUDGET": "0.25"}, start_runner=False)  # jobs stay queued
    alice = studio.as_user("alice")
    ada = alice.characters.create({"name": "Ada", "description": "An engineer."})
    alice.portraits.generate(ada.id, n=2, model="priced/flat")
    status = alice.budgets.mine()
    assert (status.monthly_budget, status.overridden, status.spent) == (0.25, False, 0.0)
    assert status.reserved == pytest.approx(0.20)
    with pytest.raises(BudgetExceeded):
        alice.portraits.generate(ada.id, model="priced/flat")
    canceled = alice.jobs.cancel(alice.jobs.list().items[0].id)  # a canceled job reserves nothing
    assert alice.portraits.generate(ada.id, model="priced/flat")
    with pytest.raises(BudgetExceeded):  # a retry is a generation too (here, an admin's retry on her month)
        studio.jobs.retry(canceled.id)
    assert alice.jobs.get(canceled.id).status == "canceled"
    studio.budgets.set("alice", None)  # unlimited for her
    assert alice.portraits.generate(ada.id, n=8, model="priced/flat")
    assert studio.budgets.reset("alice").monthly_budget == 0.25


def test_two_batches_at_once_cannot_both_pass_a_budget_that_fits_one(open_priced, db_backend):
    studio = open_priced(start_runner=False)
    for round_no in range(10):
        user = f"user{round_no}"
        view = studio.as_user(user)
        studio.budgets.set(user, 0.30)
        character = view.characters.create({"name": "Ada", "description": "An engineer."})
        start, outcomes = threading.Barrier(2), []

        def batch():
            start.wait(timeout=10)
            try:
                outcomes.append(len(view.portraits.generate(character.id, n=2, model="priced/flat")))
            except BudgetExceeded:
                outcomes.append("refused")

        threads = [threading.Thread(target=batch) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(outcomes, key=str) == [2, "refused"], (db_backend, round_no, outcomes)
        assert view.jobs.list().total == 2


def test_budgets_are_set_by_admins_only_and_checked(open_priced):
    studio = open_priced()
    alice = studio.as_user("alice")
    with pytest.raises(Forbidden):
        alice.budgets.set("alice", 100.0)
    with pytest.raises(Forbidden):
        alice.budgets.list()
    for bad in (-1, float("nan"), float("inf"), "5", True):
        with pytest.raises(InvalidInput):
            studio.budgets.set("alice", bad)
    assert alice.budgets.mine().monthly_budget is None  # nothing was written
    [row] = [u for u in studio.budgets.list() if u.id == "alice"]
    assert row.budget.remaining is None and not row.is_admin


@pytest.mark.parametrize("value", ["-1", "ten", "nan", "inf"])
def test_a_bad_default_budget_names_the_variable(tmp_path, value):
    with pytest.raises(InvalidSetting, match="STUDIO_DEFAULT_BUDGET"):
        make_settings(tmp_path, {"STUDIO_DEFAULT_BUDGET": value})


def test_price_per_megapixel_is_by_requested_size():
    caps = Capabilities(price_per_megapixel=0.04)
    assert image_price(caps, 1000, 500) == pytest.approx(0.02)
    assert image_price(Capabilities(price_per_image=0.05, price_per_megapixel=0.04), 2000, 2000) == 0.05
    assert image_price(Capabilities(), 1024, 1024) is None
