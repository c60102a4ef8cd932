"""The whole portrait flow, once per backend: local disk and S3 (moto on 127.0.0.1)."""
from __future__ import annotations

import io

from PIL import Image

from core.images import placeholder
from tests.conftest import png_bytes
from tests.storage.conftest import Backend, http_get


def test_portrait_flow(backend: Backend):
    studio = backend.open()
    store = studio.ctx.store
    character = studio.characters.create({"name": "Mia", "description": "A cheerful barista with red hair.",
                                          "appearance_tags": ["red hair"]})
    character = studio.characters.set_reference_upload(character.id, png_bytes((96, 96), (30, 160, 90)))
    assert backend.raw_read(character.reference_image_key)  # the reference is really in the store

    # generate (image-to-image from the character's reference, so providers get the reference)
    jobs = studio.portraits.generate(character.id, n=3, reference="character", width=320, height=384)
    request = studio.engine.runner._build_request(jobs[0])
    [ref] = request.references
    if backend.name == "s3":
        assert ref.url and ref.url.startswith(backend.moto.endpoint) and "X-Amz-Signature" in ref.url
        assert http_get(ref.url).content == backend.raw_read(character.reference_image_key)
    else:
        assert ref.url is None and ref.data == backend.raw_read(character.reference_image_key)
    done = studio.jobs.wait([j.id for j in jobs], timeout=60)
    assert [j.status for j in done] == ["completed"] * 3, [j.last_error for j in done]

    # gallery listing: thumbnails (WebP, about 256 px) for the grid, full images for the large view
    page = studio.portraits.list(character.id)
    assert page.total == 3
    for portrait in page.items:
        assert portrait.thumbnail_key.endswith(".thumb.webp")
        thumb = backend.raw_read(portrait.thumbnail_key)
        with Image.open(io.BytesIO(thumb)) as img:
            assert img.format == "WEBP" and max(img.size) <= 256
        for key in (portrait.thumbnail_key, portrait.image_key):
            src = studio.images.src(key)
            if backend.name == "s3":
                assert isinstance(src, str) and src.startswith(backend.moto.endpoint + "/")
                response = http_get(src)
                assert response.status_code == 200 and response.content == backend.raw_read(key)
                assert response.headers["Content-Type"] == ("image/webp" if key.endswith(".webp") else "image/png")
                assert studio.images.src(key) == src  # cached until shortly before it expires
            else:
                assert src == backend.raw_read(key)
    assert sorted(backend.object_keys()) == sorted(
        [character.reference_image_key] + [k for p in page.items for k in (p.image_key, p.thumbnail_key)])

    # download: the full PNG with a readable name; on S3 also a presigned download URL
    first = page.items[0]
    data, filename = studio.portraits.download(first.id)
    assert filename.startswith("mia-") and filename.endswith(".png")
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and img.size == (320, 384)
    url = studio.images.download_url(first.image_key, filename)
    if backend.name == "s3":
        assert "response-content-disposition" in url and http_get(url).content == data
    else:
        assert url is None

    # delete one portrait: its image and thumbnail go
    studio.portraits.delete(first.id)
    assert studio.portraits.list(character.id).total == 2
    keys = backend.object_keys()
    assert first.image_key not in keys and first.thumbnail_key not in keys
    gone = studio.images.src(first.thumbnail_key)
    if backend.name == "s3":
        assert http_get(gone).status_code == 404  # the browser gets a 404; `studio gc` reports rows like that
    else:
        assert gone == placeholder()

    # delete the character: no object is left behind
    studio.characters.delete(character.id)
    assert backend.object_keys() == []
    assert list(store.keys()) == []
