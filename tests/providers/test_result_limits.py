"""Provider results are held to the upload limits (20 MB, 40 megapixels: docs/plugins.md), within a
deadline, through at most a few redirects, and never from a local or private address other than the
provider's own host. Driven through the studio against the fakes and a second loopback "internal
service" that must never be reached."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from PIL import Image

from core.errors import InvalidImage
from tests.fakes.base import FakeServer, Reply, Req, b64, bomb_png
from tests.providers.conftest import BY_NAME, finish, generate

REPO = Path(__file__).resolve().parents[2]
URL_RESULTS = [BY_NAME["fal"], BY_NAME["replicate"]]  # their fakes serve the result image from a URL ("file")


@lru_cache(maxsize=1)
def bomb() -> bytes:
    return bomb_png(13000, 13000)  # 169 megapixels in about 160 KB


@lru_cache(maxsize=1)
def too_many_bytes() -> bytes:
    """A PNG of 2800x2800 noise, stored uncompressed: about 23.5 MB, under 8 megapixels."""
    out = io.BytesIO()
    Image.frombytes("RGB", (2800, 2800), os.urandom(2800 * 2800 * 3)).save(out, "PNG", compress_level=0)
    return out.getvalue()


class InternalService(FakeServer):
    """Another service on loopback (an admin API, a metadata endpoint): nothing may reach it."""

    def route(self, req: Req) -> str:
        return "internal"

    def dispatch(self, req: Req) -> Reply:
        return Reply(500, raw=b"INTERNAL-ONLY: admin password hunter2", content_type="text/plain")


@pytest.fixture
def internal():
    server = InternalService("unused")
    yield server
    server.close()


def _bomb_fault(provider: str) -> tuple[str, dict]:
    """Where each provider's fake hands over the result, and a reply carrying the bomb there."""
    data_uri = f"data:image/png;base64,{b64(bomb())}"
    return {
        "fal": ("file", dict(status=200, body=bomb(), content_type="image/png")),
        "replicate": ("file", dict(status=200, body=bomb(), content_type="image/png")),
        "openai": ("submit", dict(status=200, body={"created": 1, "data": [{"b64_json": b64(bomb())}]})),
        "runpod": ("status", dict(status=200, body=lambda r: {"id": r.path.rsplit("/", 1)[1], "status": "COMPLETED",
                                                              "output": {"images": [data_uri]}})),
    }[provider]


def test_a_decompression_bomb_result_is_refused_by_name(case, fake, open_studio):
    op, reply = _bomb_fault(case.provider)
    fake.fault(op, **reply)
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed" and job.attempts == 1, job.last_error  # permanent: asking again pays again
    assert "13000x13000" in job.last_error and "megapixels" in job.last_error, job.last_error
    assert studio.portraits.list(job.character_id).total == 0


CHILD = """
import json, resource, sys
from pathlib import Path
from core.studio import Studio
from tests.conftest import make_settings
from tests.fakes.base import bomb_png
from tests.fakes.replicate import ReplicateFake
from tests.providers.conftest import BASE_ENV, generate

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)

fake = ReplicateFake("key-for-the-bomb-child")
fake.fault("file", 200, body=bomb_png(13000, 13000), content_type="image/png")
studio = Studio.open(settings=make_settings(Path(sys.argv[1]), {**fake.env(), **BASE_ENV}), retry_base=0.01)
before = peak_mb()  # taken before the job exists, so nothing it does can come first
job = generate(studio, "replicate", "black-forest-labs/flux-schnell")
job = studio.jobs.wait(job.id, timeout=60)[0]
print(json.dumps({"status": job.status, "error": job.last_error, "grew_mb": peak_mb() - before}))
studio.close()
fake.close()
"""


@pytest.mark.slow
def test_a_decompression_bomb_does_not_grow_the_process(tmp_path):
    """In a process of its own, so its peak memory is the job's: the bomb's 169 megapixels would take
    at least 169 MB decoded (and thumbnails convert to RGB: 507 MB)."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "home")], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "failed" and "megapixels" in result["error"], result
    assert result["grew_mb"] < 100, result


@pytest.mark.parametrize("case", URL_RESULTS, ids=str)
def test_a_result_over_the_upload_byte_limit_is_refused(case, fake, open_studio):
    data = too_many_bytes()
    fake.fault("file", 200, body=data, content_type="image/png")
    studio = open_studio(fake)
    with pytest.raises(InvalidImage, match="limit is 20 MB"):
        studio.uploads.add(data)  # the same bytes as an upload
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed" and job.attempts == 1
    assert "limit of 20 MB" in job.last_error, job.last_error


@pytest.mark.parametrize("case", URL_RESULTS, ids=str)
def test_a_slow_drip_download_is_cut_at_the_deadline(case, fake, open_studio):
    fake.fault("file", 200, body=bomb()[:80], content_type="image/png", drip=0.25)  # 80 bytes: 20 s if let run
    # a fetch is retried until the job's deadline (docs/plugins.md, Errors and retries): 1 s here
    studio = open_studio(fake, STUDIO_DOWNLOAD_DEADLINE="1", STUDIO_JOB_DEADLINE="1")
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed" and "longer than 1 s" in job.last_error, job.last_error
    held = (job.finished_at - job.started_at).total_seconds()
    assert held < 8, f"the download held the job {held:.1f} s with a 1 s deadline"


@pytest.mark.parametrize("case", URL_RESULTS, ids=str)
def test_a_redirect_loop_is_a_clear_error_after_a_few_hops(case, fake, open_studio):
    fake.fault("file", 302, headers={"Location": "/files/again.png"}, times=100)
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed" and job.attempts == 1
    assert "redirect" in job.last_error and "Internal error" not in job.last_error, job.last_error
    assert 2 <= fake.count("file") <= 4  # the first answer and at most three redirects followed


@pytest.mark.parametrize("case", URL_RESULTS, ids=str)
def test_a_redirect_on_the_providers_own_host_is_followed(case, fake, open_studio):
    fake.fault("file", 307, headers={"Location": "/files/moved.png"})
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "completed", job.last_error
    assert [r.path for r in fake.requests("file")][-1] == "/files/moved.png"


@pytest.mark.parametrize("case", URL_RESULTS, ids=str)
def test_a_redirect_to_another_local_service_is_refused(case, fake, open_studio, internal):
    fake.fault("file", 302, headers={"Location": f"{internal.url}/admin/export"})
    studio = open_studio(fake)
    job = finish(studio, generate(studio, case.provider, case.txt2img))
    assert job.status == "failed" and "local or private address" in job.last_error, job.last_error
    assert "INTERNAL-ONLY" not in job.last_error and "hunter2" not in job.last_error
    assert internal.count("internal") == 0


def test_a_result_url_on_another_local_service_is_refused(fake_fal, open_studio, internal):
    fake_fal.fault("result", 200, body={"images": [{"url": f"{internal.url}/latest.png"}], "seed": 1})
    studio = open_studio(fake_fal)
    job = finish(studio, generate(studio, "fal", BY_NAME["fal"].txt2img))
    assert job.status == "failed" and "local or private address" in job.last_error, job.last_error
    assert internal.count("internal") == 0


def test_an_api_call_redirected_to_another_local_service_is_refused(fake_fal, open_studio, internal):
    fake_fal.fault("status", 307, headers={"Location": f"{internal.url}/status"})
    studio = open_studio(fake_fal)
    job = finish(studio, generate(studio, "fal", BY_NAME["fal"].txt2img))
    assert job.status == "failed" and "local or private address" in job.last_error, job.last_error
    assert "INTERNAL-ONLY" not in job.last_error
    assert internal.count("internal") == 0


@pytest.fixture
def fake_fal():
    server = BY_NAME["fal"].fake("sk-fal-result-url-test-key")
    yield server
    server.close()
