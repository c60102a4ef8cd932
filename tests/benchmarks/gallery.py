"""Gallery and character list at scale: data calls, page renders (AppTest) and memory."""
from __future__ import annotations

import time
from pathlib import Path

from core.images import thumbnail
from providers.offline import render
from tests.benchmarks.harness import Figure, fresh_home, open_studio, rss_mb, summarise


def populate(studio, characters: int, portraits: int) -> str:
    """Bulk rows (as a long-lived team home would hold), thumbnails on disk for the gallery's first pages."""
    db = studio.ctx.db
    owner = studio.actor.id
    db.execute(
        "INSERT INTO characters (id, owner, name, description, gender, appearance_tags, clothing_tags, created_at, updated_at) "
        "SELECT 'c' || i, ?, 'Character ' || i, 'bulk', 'female', "
        "CASE WHEN i % 10 = 0 THEN '[\"red hair\",\"freckles\"]' ELSE '[\"black hair\"]' END, '[\"coat\"]', "
        "now() - INTERVAL (i) SECOND, now() FROM range(?) t(i)", [owner, characters])
    hero = studio.characters.create({"name": "Hero", "description": "The one with the big gallery."})
    db.execute(
        "INSERT INTO character_portraits SELECT 'p' || i, ?, ?, ? || '/portraits/' || ? || '/j' || i || '.png', "
        "? || '/portraits/' || ? || '/j' || i || '.thumb.webp', 'bulk', '{\"seed\": 1}', 'job' || i, 0, 1024, 1024, "
        "now() - INTERVAL (i) SECOND FROM range(?) t(i)", [hero.id, owner, owner, hero.id, owner, hero.id, portraits])
    db.execute("UPDATE characters SET primary_portrait_id = 'p0' WHERE id = ?", [hero.id])
    thumb = thumbnail(render("bulk", 1, 512, 512))
    for i in range(min(portraits, 96)):
        studio.ctx.store.write(f"{owner}/portraits/{hero.id}/j{i}.thumb.webp", thumb)
    return hero.id


def _time(fn, repeat: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def data_calls(characters: int, portraits: int, repeat: int = 20, section: str = "gallery") -> tuple[list[Figure], Path, str]:
    home = fresh_home("gallery")
    label = f"{portraits:,} portraits / {characters:,} characters"
    with open_studio(home, start_runner=False) as studio:
        t0 = time.perf_counter()
        hero = populate(studio, characters, portraits)
        populate_s = time.perf_counter() - t0
        target = "< 200 ms"
        figures = [
            summarise(section, f"gallery page 1 (24) [{label}]", _time(lambda: studio.portraits.list(hero, limit=24), repeat), target=target),
            summarise(section, f"gallery last page [{label}]",
                      _time(lambda: studio.portraits.list(hero, limit=24, offset=portraits - 24), repeat), target=target),
            summarise(section, f"character list page 1 (50) [{label}]", _time(lambda: studio.characters.list(limit=50), repeat), target=target),
            summarise(section, f"character search 'red' [{label}]", _time(lambda: studio.characters.list("red", limit=50), repeat),
                      target=target, note=f"{studio.characters.list('red', limit=1).total:,} matches"),
            summarise(section, f"gallery thumbnails 24 as display sources [{label}]",
                      _time(lambda: [studio.images.src(p.thumbnail_key) for p in studio.portraits.list(hero, limit=24).items], repeat),
                      target=target, note="local disk: bytes"),
        ]
        figures.append(Figure(section, f"populate [{label}]", populate_s * 1000, "single run", "ms", 1, note="bulk SQL + 96 thumbnails"))
    return figures, home, hero


def page_renders(home: Path, hero: str, label: str, repeat: int = 9, section: str = "gallery") -> list[Figure]:
    """Render the Characters and Portraits pages with AppTest on a populated home, each in a new session."""
    import os

    import streamlit as st
    from streamlit.runtime.scriptrunner import script_runner

    from tests.ui.ui_helpers import app_test, run_entrypoint

    script_runner._mpa_v1 = run_entrypoint
    os.environ.update(STUDIO_HOME=str(home), STUDIO_LOAD_PLUGINS="")
    st.cache_resource.clear()
    # The script thread's own CPU time per run: the app's cost, apart from AppTest's parsing of the output and
    # from other processes competing for the cores (wall time on a busy 2-core machine varies several-fold).
    script_cpu: list[float] = []
    run_script = script_runner.ScriptRunner._run_script

    def timed_run(self, *args, **kwargs):
        t0 = time.thread_time()
        try:
            return run_script(self, *args, **kwargs)
        finally:
            script_cpu.append((time.thread_time() - t0) * 1000)

    script_runner.ScriptRunner._run_script = timed_run
    figures = []
    try:
        components = None
        for page in ("characters", "portraits"):
            samples, cpu = [], []
            for _ in range(repeat + 1):
                at = app_test({"character": hero}, timeout=120)
                # A new AppTest scans every installed package for Streamlit components on its first run;
                # `streamlit run` does that once, when the server starts: it is no page's cost.
                at._bidi_component_manager = components
                if page != "characters":
                    at.run()  # the session's first run registers the pages
                    at.switch_page(f"pages/{page}.py")
                script_cpu.clear()
                t0 = time.perf_counter()
                at.run()
                samples.append((time.perf_counter() - t0) * 1000)
                components = at._bidi_component_manager
                cpu.append(sum(script_cpu))
                assert not at.exception, at.exception
            figures.append(summarise(section, f"{page} page first render, AppTest [{label}]", samples[1:],
                                     note=f"the very first (opens the Studio) {samples[0]:.0f} ms"))
            figures.append(summarise(section, f"{page} page first render, script thread CPU [{label}]", cpu[1:],
                                     target="< 100 ms" if page == "characters" else ""))
    finally:
        script_runner.ScriptRunner._run_script = run_script
        st.cache_resource.clear()
    figures.append(Figure(section, "peak memory of the benchmark process", rss_mb(), "single run", "MB", 1))
    return figures


def run(characters: int = 10_000, portraits: int = 2_000, pages: bool = True, section: str = "gallery") -> list[Figure]:
    figures, home, hero = data_calls(characters, portraits, section=section)
    if pages:
        figures += page_renders(home, hero, f"{portraits:,} portraits / {characters:,} characters", section=section)
    return figures


if __name__ == "__main__":
    from tests.benchmarks.harness import machine_facts, render_table

    print(render_table(machine_facts(), run(pages=False)))
