"""Time to first render of the Portraits page (AppTest) for a character with 1,000 portraits.

    python benchmarks/ui_portraits_render.py [--portraits 1000] [--runs 5]

Prints figures; asserts nothing. Uses a temporary STUDIO_HOME and the offline provider: one portrait is
generated, the rest are copies with their own image and thumbnail files and rows.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_entrypoint_like_streamlit_run() -> None:
    """Same shim as tests/ui/conftest.py: AppTest would otherwise run a switched-to page without the entrypoint."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import script_runner

    def run_main(main_script_path: str) -> None:
        PagesManager.uses_pages_directory = False
        code = compile(Path(main_script_path).read_text(), main_script_path, "exec")
        exec(code, sys.modules["__main__"].__dict__)  # noqa: S102

    script_runner._mpa_v1 = run_main


def populate(studio, character_id: str, n: int) -> None:
    from core.db import utcnow

    [job] = studio.portraits.generate(character_id, {})
    [job] = studio.jobs.wait(job.id, timeout=60)
    first = studio.portraits.get(job.result_id)
    image, thumb = studio.images.read(first.image_key), studio.images.read(first.thumbnail_key)
    db, store = studio.ctx.db, studio.ctx.store
    row = db.fetchone("SELECT * FROM character_portraits WHERE id = ?", [first.id])
    cols = list(row)
    base = utcnow()
    from datetime import timedelta

    with db.transaction() as cur:
        for i in range(n - 1):
            pid = f"bench{i:06d}"
            key = first.image_key.rsplit("/", 1)[0] + f"/{pid}.png"
            tkey = key[:-4] + ".webp"
            store.write(key, image)
            store.write(tkey, thumb)
            values = {**row, "id": pid, "job_id": f"benchjob{i:06d}", "image_key": key, "thumbnail_key": tkey,
                      "created_at": base - timedelta(seconds=i + 1)}
            cur.execute(f"INSERT INTO character_portraits ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [values[c] for c in cols])


def first_render(character_id: str) -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "studio_app.py"), default_timeout=120)
    at.query_params["character"] = character_id
    at.run()  # the session's first run (Characters page) registers the pages
    at.switch_page("pages/portraits.py")
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    assert not at.exception, at.exception
    heads = [h.value for h in at.subheader]
    assert any(h.startswith("Gallery · ") for h in heads), heads
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portraits", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIO_HOME"] = tmp
        os.environ["STUDIO_LOAD_PLUGINS"] = ""
        run_entrypoint_like_streamlit_run()
        import streamlit as st

        from ui.app import get_studio

        studio = get_studio()
        small = studio.characters.create({"name": "One", "description": "one portrait"})
        big = studio.characters.create({"name": "Many", "description": "a thousand portraits"})
        t0 = time.perf_counter()
        populate(studio, small.id, 1)
        populate(studio, big.id, args.portraits)
        print(f"populated {args.portraits} portraits in {time.perf_counter() - t0:.1f} s")
        for label, cid, count in (("1 portrait", small.id, 1), (f"{args.portraits} portraits", big.id, args.portraits)):
            first_render(cid)  # warm imports and caches once
            times = [first_render(cid) for _ in range(args.runs)]
            print(f"Portraits page first render, {label:>16}: median {statistics.median(times) * 1000:7.1f} ms, "
                  f"min {min(times) * 1000:7.1f} ms, max {max(times) * 1000:7.1f} ms ({args.runs} fresh sessions)")
        st.cache_resource.clear()


if __name__ == "__main__":
    main()
