"""The Compare grid (AppTest, offline provider): time from "Run comparison" to a full 12-cell grid
(3 prompts x 2 models x 2 seeds), and the render time of the finished grid."""
from __future__ import annotations

import os
import time

from tests.benchmarks.harness import Figure, fresh_home, summarise


def run(renders: int = 5) -> list[Figure]:
    import streamlit as st
    from streamlit.runtime.scriptrunner import script_runner

    from tests.ui.ui_helpers import app_test, page, run_entrypoint
    from ui.app import get_studio

    script_runner._mpa_v1 = run_entrypoint  # as tests/ui/conftest.py: the entrypoint runs the page
    home = fresh_home("compare")
    saved = {k: os.environ.get(k) for k in ("STUDIO_HOME", "STUDIO_LOAD_PLUGINS")}
    os.environ.update(STUDIO_HOME=str(home), STUDIO_LOAD_PLUGINS="")
    st.cache_resource.clear()
    try:
        studio = get_studio()
        mia = studio.characters.create({"name": "Mia", "description": "A cheerful barista with red hair."})
        models = {m.model_key: m.id for m in studio.models.list()}
        at = app_test({"character": mia.id}, timeout=120)
        page(at, "compare")
        at.number_input(key=f"cmp.{mia.id}.n_prompts").set_value(3).run()
        for i, prompt in enumerate(["in the rain", "at the beach", "on a rooftop"]):
            at.text_area(key=f"cmp.{mia.id}.prompt.{i}").set_value(prompt)
        at.multiselect(key=f"cmp.{mia.id}.models").set_value([models["offline/preview"], models["offline/preview-i2i"]])
        at.text_input(key=f"cmp.{mia.id}.seeds").set_value("1, 2").run()
        started = time.perf_counter()
        at.button(key="cmp_run").click().run()
        comparison = studio.compare.list(mia.id)[0]
        cells = studio.compare.get(comparison.id).items
        studio.jobs.wait([c.job_id for c in cells], timeout=300)
        at.run()  # the grid as the page shows it once every cell is in
        full = (time.perf_counter() - started) * 1000
        assert "12 of 12 done" in "\n".join(str(m.value) for m in at.markdown)
        samples = []
        for _ in range(renders):
            t = time.perf_counter()
            at.run()
            samples.append((time.perf_counter() - t) * 1000)
        return [Figure("compare", "Run comparison to a full 12-cell grid (offline, AppTest)", full, "single run", "ms", 1),
                summarise("compare", "Compare page render with the finished 12-cell grid (AppTest)", samples)]
    finally:
        st.cache_resource.clear()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
