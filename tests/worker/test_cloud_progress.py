"""On RunPod, the worker's progress_update output comes back as a running job's `output` from /status
(the cloud fake): the provider reads it as the job's percent, and ignores what is not one."""
from __future__ import annotations

import pytest

from providers.runpod import RunPodProvider
from tests.fakes.runpod import ENDPOINT, RunPodFake
from tests.providers.conftest import BASE_ENV, SENTINEL, call, make_request


@pytest.mark.parametrize("output, percent", [
    ({"percent": 40.0, "step": 2, "steps": 5}, 40.0),  # the project's worker
    ({"percent": "40"}, None),
    ({"percent": 140}, None),
    ("step 2 of 5", None),
])
def test_a_running_jobs_output_is_its_percent(output, percent):
    server = RunPodFake(SENTINEL)
    server.progress = output
    try:
        provider = RunPodProvider({**server.env(), **BASE_ENV})
        request_id = call(provider, "submit", make_request(ENDPOINT)).request_id
        polls = [call(provider, "poll", request_id, None) for _ in range(3)]
    finally:
        server.close()
    assert [(p.state, p.percent) for p in polls] == [("queued", None), ("running", percent), ("completed", None)]
