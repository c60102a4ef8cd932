"""The conformance kit is itself tested: it fails each deliberately broken variant of the sample
plugin with a message naming the problem, and passes the correct plugin against a fake that
answers 429s, 5xx and slow responses now and then (20 seeds)."""
from __future__ import annotations

import base64
import random
import threading

import pytest

from core.plugin_api import GenerationResult, Health, Progress, Provider, Submission
from core.testing import (check_cancel, check_errors, check_failure, check_generation, check_health,
                          check_image_to_image, check_key_stays_home, check_resume, check_seed, run_all)
from tests.fakes.base import Fault
from tests.fakes.sample import AcmeFake
from tests.providers.conftest import SENTINEL


def variants():
    """(name, broken subclass of the sample provider, the check that must catch it, the reason it must give)."""
    import studio_sample_provider as sample

    Acme = sample.AcmeProvider

    class ErrorNeverFailed(Acme):
        async def poll(self, request_id, request):
            body = (await self.request("GET", f"v1/jobs/{request_id}")).json()
            state = {"queued": "queued", "done": "completed"}.get(body["state"], "running")  # "error" forgotten
            return Progress(state=state)

    class ReferenceNeverSent(Acme):
        async def place_references(self, payload, request):
            return payload

    class ReferenceInlineInRecipe(Acme):
        def recorded_inputs(self, sent, request):
            out = dict(sent)
            if request.references:
                out["image"] = base64.b64encode(request.references[0].data).decode()
            return out

    class AlwaysUnreachable(Acme):
        async def health(self):
            return Health("unreachable", "Acme did not answer.")

    class NoCancel(Acme):
        cancel = Provider.cancel

    class CompletedWithoutImage(Acme):
        async def poll(self, request_id, request):
            progress = await super().poll(request_id, request)
            return Progress(state="completed") if progress.state in ("queued", "running") else progress

        async def result(self, request_id, request):
            body = (await self.request("GET", f"v1/jobs/{request_id}")).json()
            images = [await self.download(body["image_b64"])] if body.get("image_b64") else []
            return GenerationResult(images=images, seed=request.seed)

    class IgnoresSeed(Acme):
        async def submit(self, request):
            payload = {"model": request.model_key, "prompt": request.prompt, "width": request.width,
                       "height": request.height}
            payload = await self.place_references(payload, request)
            body = (await self.request("POST", "v1/jobs", json=payload, retry_safe=False)).json()
            return Submission(request_id=body["id"], inputs=self.recorded_inputs(payload, request))

    class KeyToAnyHost(Acme):
        def auth_headers_for(self, url):
            return self.auth_headers()

    class AuthErrorsRetried(Acme):
        def classify(self, response):
            error = super().classify(response)
            error.retryable = True
            return error

    class SubmitsTwice(Acme):
        async def submit(self, request):
            await super().submit(request)
            return await super().submit(request)

    class ForgetsAfterRestart(Acme):
        async def submit(self, request):
            submission = await super().submit(request)
            self.__dict__.setdefault("mine", set()).add(submission.request_id)
            return submission

        async def poll(self, request_id, request):
            if request_id not in self.__dict__.get("mine", set()):
                return Progress(state="failed", error="unknown request (kept in memory only)")
            return await super().poll(request_id, request)

    return [
        ("error status never mapped to failed", ErrorNeverFailed, check_failure, "map the service's failure state"),
        ("reference never sent", ReferenceNeverSent, check_image_to_image, "reference image never reached the service"),
        ("reference inline as bare base64 in the recipe", ReferenceInlineInRecipe, check_image_to_image,
         "stores the reference inline"),
        ("health always unreachable", AlwaysUnreachable, check_health, "with a valid key says 'unreachable'"),
        ("no cancel", NoCancel, check_cancel, "sent no cancel request"),
        ("completed without an image", CompletedWithoutImage, check_generation, "ended failed: .*returned no image"),
        ("ignores the seed", IgnoresSeed, check_seed, "provider ignores the seed"),
        ("sends the key to another host", KeyToAnyHost, check_key_stays_home, "gives the key to another host"),
        ("401 retried", AuthErrorsRetried, check_errors, "HTTP 401 must be permanent"),
        ("submits twice", SubmitsTwice, check_generation, "exactly one job at the service, it made 2"),
        ("cannot resume", ForgetsAfterRestart, check_resume, "could not finish the job from its request id"),
    ]


@pytest.fixture
def acme(sample_plugin):
    server = AcmeFake(SENTINEL)
    server.poll_limit_s = 3  # a broken variant's job that never ends is given up on soon
    yield server
    server.close()


@pytest.mark.parametrize("index", range(11), ids=lambda i: f"variant{i}")
def test_the_kit_fails_each_broken_variant_naming_the_problem(acme, index):
    name, broken, check, reason = variants()[index]
    acme.provider_class = broken
    with pytest.raises(AssertionError, match=reason):
        check(acme)


def test_the_variants_are_caught_only_by_their_fault(acme):
    """The correct sample plugin passes every check the variants fail, on the same fake."""
    import studio_sample_provider

    run_all(acme, plugin=studio_sample_provider)


class FlakyAcme(AcmeFake):
    """The sample's fake, misbehaving as real services do: on the generation path (submit, status)
    a seeded share of requests answers 429 (Retry-After 0), 500 or 503, or answers late; never more
    than two faults in a row, as a service that is up."""

    def __init__(self, key: str, seed: int):
        super().__init__(key)
        self.rng = random.Random(seed)
        self.in_a_row = 0
        self.slow = threading.Event()  # never set: waited on to answer late
        self.faults_served = 0

    def _take_fault(self, op):
        if op not in ("submit", "status"):
            return None
        roll = self.rng.random()
        if roll < 0.15:
            self.slow.wait(self.rng.uniform(0.05, 0.3))  # a slow answer (the server's own latency)
        if self.in_a_row >= 2 or roll > 0.45:
            self.in_a_row = 0
            return None
        self.in_a_row += 1
        self.faults_served += 1
        status = self.rng.choice([429, 500, 503])
        return Fault(status, {"message": f"injected {status}"}, {"Retry-After": "0"} if status == 429 else {})


@pytest.mark.parametrize("seed", range(20))
def test_the_correct_plugin_passes_against_a_misbehaving_fake(sample_plugin, seed):
    server = FlakyAcme(SENTINEL, seed)
    try:
        check_generation(server)
        check_image_to_image(server)
        assert server.faults_served, "the fake injected no fault: the test proves nothing"
    finally:
        server.close()
