"""Gallery page of 200 thumbnails: time to list and sign the URLs on S3, and bytes the studio server sends.

Runs moto's S3 server on 127.0.0.1 (nothing leaves the machine), fills one studio on S3 and one on
local disk with 200 portraits from the offline provider (through the real generation pipeline),
then measures the gallery page. Prints figures; asserts nothing.

    python benchmarks/storage_gallery.py [--n 200] [--repeat 7]
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402
import requests  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from core.config import Settings  # noqa: E402
from core.studio import Studio  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.ERROR)
KEY, SECRET, REGION = "AKIABENCHMARK0000000", "benchmark-secret-0000000000000000000000", "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.1f} ms (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"


def fill(studio: Studio, n: int) -> str:
    character = studio.characters.create({"name": "Bench", "description": "A benchmark subject.",
                                          "appearance_tags": ["red hair", "freckles"]})
    ids = []
    while len(ids) < n:
        batch = min(8, n - len(ids))
        ids += [j.id for j in studio.portraits.generate(character.id, n=batch)]
    done = studio.jobs.wait(ids, timeout=600)
    assert all(j.status == "completed" for j in done), [j.last_error for j in done if j.status != "completed"]
    return character.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                 region_name=REGION).create_bucket(Bucket="studio-bench")
    aws = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": REGION,
           "AWS_ENDPOINT_URL": endpoint}

    with tempfile.TemporaryDirectory() as tmp:
        homes = {
            "s3": Settings.from_env(home=Path(tmp) / "s3", env={"STUDIO_LOAD_PLUGINS": "", **aws,
                                                                 "STUDIO_STORAGE_URL": "s3://studio-bench/studio"}),
            "local": Settings.from_env(home=Path(tmp) / "local", env={"STUDIO_LOAD_PLUGINS": ""}),
        }
        studios = {name: Studio.open(settings=s) for name, s in homes.items()}
        try:
            t0 = time.perf_counter()
            chars = {name: fill(s, args.n) for name, s in studios.items()}
            print(f"filled two studios with {args.n} portraits each in {time.perf_counter() - t0:.1f} s "
                  "(offline provider, 1024x1024 PNG + 256 px WebP thumbnail)\n")

            s3 = studios["s3"]
            store = s3.ctx.store
            query, cold, warm, listing = [], [], [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                page = s3.portraits.list(chars["s3"], limit=args.n)
                query.append(time.perf_counter() - t)
                store._signed.clear()  # a cold cache: every URL signed afresh
                t = time.perf_counter()
                urls = [s3.images.src(p.thumbnail_key) for p in page.items]
                cold.append(time.perf_counter() - t)
                t = time.perf_counter()
                again = [s3.images.src(p.thumbnail_key) for p in page.items]
                warm.append(time.perf_counter() - t)
                assert again == urls and all(isinstance(u, str) for u in urls)
                t = time.perf_counter()
                keys = list(store.keys(f"{s3.actor.id}/portraits/{chars['s3']}"))
                listing.append(time.perf_counter() - t)
            assert len(page.items) == args.n and len(keys) == 2 * args.n
            url_bytes = sum(len(u.encode()) for u in urls)
            session = requests.Session()
            t = time.perf_counter()
            fetched = sum(len(session.get(u, timeout=10).content) for u in urls)
            fetch = time.perf_counter() - t

            local = studios["local"]
            lquery, lread = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                lpage = local.portraits.list(chars["local"], limit=args.n)
                lquery.append(time.perf_counter() - t)
                t = time.perf_counter()
                blobs = [local.images.src(p.thumbnail_key) for p in lpage.items]
                lread.append(time.perf_counter() - t)
            thumb_bytes = sum(len(b) for b in blobs)
            full_bytes = sum(len(local.images.read(p.image_key)) for p in lpage.items)

            print(f"S3 (moto on 127.0.0.1), gallery page of {args.n} thumbnails, {args.repeat} runs:")
            print(f"  gallery query (DuckDB, {args.n} rows)           {ms(query)}")
            print(f"  sign {args.n} thumbnail URLs, cold cache           {ms(cold)}  "
                  f"= {statistics.median(cold) / args.n * 1e6:.0f} us per URL")
            print(f"  the same {args.n} URLs from the cache             {ms(warm)}")
            print(f"  list + sign (query + cold signing)           median "
                  f"{(statistics.median(query) + statistics.median(cold)) * 1000:.1f} ms")
            print(f"  S3 LIST of the character's {2 * args.n} objects       {ms(listing)}  (gc/copy path, not the page)")
            print(f"  bytes the studio server sends: {url_bytes:,} B of URLs "
                  f"(avg {url_bytes / args.n:.0f} B per presigned URL, expiry {store.sign_expiry} s)")
            print(f"  the browser then fetches {fetched:,} B straight from S3 ({fetch * 1000:.0f} ms for {args.n} "
                  "sequential GETs on loopback)")
            print(f"\nLocal disk, same page:")
            print(f"  gallery query                                {ms(lquery)}")
            print(f"  read {args.n} thumbnails                            {ms(lread)}")
            print(f"  bytes the studio server sends: {thumb_bytes:,} B of thumbnails "
                  f"(avg {thumb_bytes / args.n:,.0f} B); full images would be {full_bytes:,} B")
            print(f"\nS3 sends {url_bytes / thumb_bytes:.1%} of the local-disk bytes for this page "
                  f"({thumb_bytes / url_bytes:.1f}x less).")
        finally:
            for s in studios.values():
                s.close()
            server.stop()


if __name__ == "__main__":
    main()
