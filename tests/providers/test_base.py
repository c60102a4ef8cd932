"""The shared plumbing in core.provider: Retry-After parsing, downloads (URL, data URI, bare
base64; size limit; content check), reference placement tiers, recorded inputs, scrubbing."""
from __future__ import annotations

import email.utils
import json
import time
from urllib.parse import quote

import httpx
import pytest

from core.errors import ProviderError
from core.models import Capabilities, ReferenceMapping
from core.config import Settings
from core.provider import Provider, ReferenceImage, image_sources, sha256
from tests.conftest import png_bytes
from tests.fakes.base import FakeServer, Reply, Req, b64, png
from tests.providers.conftest import call, make_request

SECRET = "sk-SENTINEL-plumbing-0123456789"


class Files(FakeServer):
    def route(self, req: Req) -> str:
        return req.path.strip("/")

    def dispatch(self, req: Req) -> Reply:
        if req.op == "img":
            return Reply(raw=png(1), content_type="image/png")
        if req.op == "big":
            return Reply(raw=b"\x89PNG" + b"0" * 300_000, content_type="image/png")
        if req.op == "text":
            return Reply(raw=b"<html>not an image</html>", content_type="text/html")
        if req.op == "upload":
            return Reply(200, {"url": f"{self.url}/uploaded/1"})
        return Reply(404, {"detail": f"no {req.path} here; your key was {req.headers.get('authorization')}"})


class Plumbed(Provider):
    id = "plumbed"
    display_name = "Plumbed"
    key_env = ("PLUMBED_KEY",)
    base_url_env = "PLUMBED_URL"

    async def upload_reference(self, ref: ReferenceImage) -> str:
        return (await self.request("POST", "upload", content=ref.data)).json()["url"]


@pytest.fixture
def files():
    server = Files(SECRET)
    yield server
    server.close()


def plumbed(files: Files) -> Plumbed:
    return Plumbed({"PLUMBED_KEY": SECRET, "PLUMBED_URL": files.url})


def _response(headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(429, headers=headers)


@pytest.mark.parametrize("headers,expected", [
    ({"retry-after-ms": "1500"}, 1.5),
    ({"Retry-After": "7"}, 7.0),
    ({"ratelimit-reset": "3"}, 3.0),
    ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
    ({}, None),
])
def test_retry_after(headers, expected):
    assert Provider.retry_after(_response(headers)) == expected


@pytest.mark.parametrize("value", ["soon", "in a minute", "Wed, 99 Foo 2026", "", "1e", "Mon, 32 Jan 2026 99:00:00 GMT"])
def test_retry_after_that_is_neither_a_number_nor_a_date_is_ignored(value):
    assert Provider.retry_after(_response({"Retry-After": value})) is None
    assert Provider.retry_after(_response({"Retry-After": value, "ratelimit-reset": "4"})) == 4.0


def test_retry_after_garbage_from_a_service_is_a_plain_retryable_error():
    """A 429 whose Retry-After is neither seconds nor a date: a retryable ProviderError, no ValueError."""
    from tests.fakes.fal import FalFake
    from tests.providers.conftest import BASE_ENV, call, make_request
    from providers.fal import FalProvider

    fal = FalFake(SECRET)
    try:
        fal.fault("submit", 429, {"detail": "Too many requests"}, {"Retry-After": "after lunch"})
        with pytest.raises(ProviderError) as err:
            call(FalProvider({**fal.env(), **BASE_ENV}), "submit", make_request("fal-ai/flux/dev"))
        assert err.value.retryable and err.value.retry_after is None and err.value.status == 429
    finally:
        fal.close()


def test_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < Provider.retry_after(_response({"Retry-After": when})) <= 31


def test_download_url_data_uri_and_bare_base64(files):
    p = plumbed(files)
    for source in (f"{files.url}/img", f"data:image/png;base64,{b64(png(1))}", b64(png(1))):
        image = call(p, "download", source)
        assert (image.content_type, image.width, image.height) == ("image/png", 48, 40)


def test_download_limits_and_checks(files):
    with pytest.raises(ProviderError, match="larger than"):
        call(plumbed(files), "download", f"{files.url}/big", max_bytes=100_000)
    with pytest.raises(ProviderError, match="not a readable image"):
        call(plumbed(files), "download", f"{files.url}/text")
    with pytest.raises(ProviderError) as err:
        call(plumbed(files), "download", f"{files.url}/gone")
    assert err.value.status == 404 and SECRET not in err.value.message  # the echoed key is scrubbed


def test_reference_tiers_url_inline_upload(files):
    p = plumbed(files)
    small = png_bytes((20, 20))
    signed = ReferenceImage(small, "image/png", sha256(small), url="https://bucket.example/ref.png?sig=1")
    assert call(p, "reference_value", signed) == "https://bucket.example/ref.png?sig=1"
    assert call(p, "reference_value", ReferenceImage(small, "image/png", sha256(small))).startswith("data:image/png;base64,")
    p.max_inline_reference_bytes = 10
    assert call(p, "reference_value", ReferenceImage(small, "image/png", sha256(small))) == f"{files.url}/uploaded/1"
    assert files.requests("upload")[0].body == small


def test_place_references_single_list_and_refusal(files):
    refs = [png_bytes((20, 20)), png_bytes((21, 21))]
    single = make_request("m", references=refs, capabilities=Capabilities(
        supports_i2i=True, reference=ReferenceMapping(field="image_url")))
    out = call(plumbed(files), "place_references", {}, single)
    assert isinstance(out["image_url"], str)
    listed = make_request("m", references=refs, capabilities=Capabilities(
        supports_i2i=True, reference=ReferenceMapping(field="image_urls", form="list", limit=2)))
    out = call(plumbed(files), "place_references", {}, listed)
    assert len(out["image_urls"]) == 2
    recorded = plumbed(files).recorded_inputs(out, listed)
    assert recorded["image_urls"] == [f"sha256:{sha256(r)}" for r in refs]
    with pytest.raises(ProviderError, match="does not take a reference"):
        call(plumbed(files), "place_references", {}, make_request("m", references=refs))


def test_scrub_and_secret_values():
    """A provider's own key is masked from its construction; another secret setting (not handed to the
    provider) once the settings holding it are loaded."""
    p = Plumbed({"PLUMBED_KEY": SECRET, "OTHER_TOKEN": "tok-123456", "STUDIO_HOME": "visible"})
    assert p.secret("OTHER_TOKEN") is None
    assert p.scrub(f"a {SECRET} c visible") == "a *** c visible"
    Settings.from_env(env={"OTHER_TOKEN": "tok-123456"})
    assert p.scrub(f"a {SECRET} b tok-123456 c visible") == "a *** b *** c visible"


def test_scrub_masks_the_forms_a_key_takes_in_messages():
    """A key as an exception shows it (bytes repr of a header with a stray newline), JSON- and
    URL-escaped; keys with characters those escape are masked in every form."""
    odd = 'sk-odd"key/with+chars\\9'
    p = Plumbed({"PLUMBED_KEY": f"{odd}\n"})
    header = f"Bearer {odd}\n".encode()
    for text in (f"Illegal header value {header!r}", json.dumps({"auth": f"Bearer {odd}"}),
                 f"GET /x?key={quote(odd, safe='')}", repr(odd)):
        assert "sk-odd" not in p.scrub(text), text
    assert p.api_key() == odd  # stripped as loaded


def test_image_sources_shapes():
    assert image_sources("https://x/a.png") == ["https://x/a.png"]
    assert image_sources(["u1", "u2"]) == ["u1", "u2"]
    assert image_sources({"images": [{"url": "u", "width": 1}]}) == ["u"]
    assert image_sources({"images": [{"filename": "f.png", "type": "s3_url", "data": "https://s3/f.png"}]}) == ["https://s3/f.png"]
    assert image_sources({"data": [{"b64_json": "AAAA", "revised_prompt": "p"}]}) == ["AAAA"]
    assert image_sources({"output": {"image": "data:image/png;base64,AA"}}) == ["data:image/png;base64,AA"]
    assert image_sources({"nothing": 1}) == [] and image_sources(None) == []


def test_environment_overrides_poll_interval_and_timeout():
    p = Plumbed({"STUDIO_POLL_INTERVAL": "0.05", "STUDIO_PROVIDER_TIMEOUT": "7"})
    assert (p.poll_interval, p.timeout) == (0.05, 7.0)
    assert (Plumbed({}).poll_interval, Plumbed({"STUDIO_POLL_INTERVAL": "soon"}).poll_interval) == (1.0, 1.0)


def test_the_key_only_goes_to_the_base_urls_origin(files):
    p = plumbed(files)
    call(p, "request", "GET", f"{files.url}/img")
    elsewhere = files.url.replace("127.0.0.1", "localhost")  # same server, another origin
    call(p, "request", "GET", f"{elsewhere}/img")
    first, second = files.requests("img")
    assert first.headers["authorization"] == f"Bearer {SECRET}"
    assert "authorization" not in second.headers
