"""A gallery page of 200 thumbnails on S3 (moto on 127.0.0.1) against local disk: time to list and sign
the URLs, and the bytes the studio server sends for the page."""
from __future__ import annotations

import logging
import os
import time
import urllib.request

import boto3
from moto.server import ThreadedMotoServer

from tests.benchmarks.harness import Figure, fresh_home, open_studio, summarise

KEY, SECRET, REGION = "AKIABENCHMARK0000000", "benchmark-secret-0000000000000000000000", "us-east-1"


def _fill(studio, n: int) -> str:
    character = studio.characters.create({"name": "Bench", "description": "A benchmark subject."})
    ids = []
    while len(ids) < n:
        ids += [j.id for j in studio.portraits.generate(character.id, n=min(8, n - len(ids)))]
    done = studio.jobs.wait(ids, timeout=600)
    assert all(j.status == "completed" for j in done), {j.last_error for j in done}
    return character.id


def run(n: int = 200, repeat: int = 7) -> list[Figure]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()  # bound once, at start
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                 region_name=REGION).create_bucket(Bucket="studio-bench")
    aws = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": REGION,
           "AWS_ENDPOINT_URL": endpoint, "STUDIO_STORAGE_URL": "s3://studio-bench/studio"}
    try:
        with open_studio(fresh_home("s3"), aws) as s3, open_studio(fresh_home("local")) as local:
            s3_char, local_char = _fill(s3, n), _fill(local, n)
            query, cold, warm, lread = [], [], [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                page = s3.portraits.list(s3_char, limit=n)
                t1 = time.perf_counter()
                s3.ctx.store._signed.clear()  # a cold cache: every URL signed afresh
                urls = [s3.images.src(p.thumbnail_key) for p in page.items]
                t2 = time.perf_counter()
                again = [s3.images.src(p.thumbnail_key) for p in page.items]
                t3 = time.perf_counter()
                blobs = [local.images.src(p.thumbnail_key) for p in local.portraits.list(local_char, limit=n).items]
                t4 = time.perf_counter()
                query.append((t1 - t0) * 1000)
                cold.append((t2 - t1) * 1000)
                warm.append((t3 - t2) * 1000)
                lread.append((t4 - t3) * 1000)
            assert again == urls and all(isinstance(u, str) for u in urls)
            with urllib.request.urlopen(urls[0]) as r:  # the browser's fetch, straight from the store
                assert r.read() == s3.images.read(page.items[0].thumbnail_key)
            url_bytes = sum(len(u.encode()) for u in urls)
            thumb_bytes = sum(len(b) for b in blobs)
            return [
                summarise("storage", f"S3: list + sign {n} thumbnail URLs (cold cache)", [q + c for q, c in zip(query, cold)],
                          note=f"query {sorted(query)[len(query) // 2]:.1f} ms + signing {sorted(cold)[len(cold) // 2] / n:.2f} ms/URL"),
                summarise("storage", f"S3: the same {n} URLs from the cache", warm),
                summarise("storage", f"local disk: list + read {n} thumbnails", lread),
                Figure("storage", f"S3: bytes the studio sends for the page ({n} URLs)", url_bytes, "single run", "B", 1,
                       note=f"{url_bytes / thumb_bytes:.1%} of local disk's {thumb_bytes:,} B of thumbnails"),
            ]
    finally:
        server.stop()


if __name__ == "__main__":
    from tests.benchmarks.harness import machine_facts, render_table

    print(render_table(machine_facts(), run()))
