"""Costs: what a provider reports (GenerationResult.cost, USD) wins over the catalog's price, and both
reach the job row and the recipe."""
from __future__ import annotations

from core.hookspecs import hookimpl
from core.models import Capabilities, ModelSpec
from core.studio import Studio
from providers.offline import OfflineProvider
from tests.conftest import make_settings


class MeteredProvider(OfflineProvider):
    """A plugin whose service states what each image cost."""

    id = "metered"
    display_name = "Metered"

    def default_models(self) -> list[ModelSpec]:
        return [ModelSpec(model_key="metered/v1", display_name="Metered v1", priority=10,
                          capabilities=Capabilities(price_per_image=0.5))]

    async def generate(self, request):
        result = await super().generate(request)
        result.cost = 0.0123
        return result


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register(MeteredProvider)


def test_a_reported_cost_wins_over_the_catalog_price(tmp_path):
    studio = Studio.open(settings=make_settings(tmp_path / "home", {}), plugins=[Plugin()], retry_base=0.01)
    try:
        character = studio.characters.create({"name": "Ada", "description": "An engineer."})
        model = next(m for m in studio.models.list() if m.model_key == "metered/v1")
        job = studio.portraits.generate(character.id, {"model_id": model.id})[0]
        done = studio.jobs.wait(job.id, timeout=20)[0]
        assert done.status == "completed", done.last_error
        assert done.cost == 0.0123 and studio.portraits.get(done.result_id).recipe.cost == 0.0123
    finally:
        studio.close()
