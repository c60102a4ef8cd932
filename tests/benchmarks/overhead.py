"""Overhead per portrait: wall time from `generate` to completed minus the provider's own time."""
from __future__ import annotations

import time

from core import images
from providers.offline import render
from tests.benchmarks.harness import Figure, fresh_home, open_studio, summarise
from tests.engine.scripted import ServerProcess, plugin

# Phases on the critical path, in order; the thumbnail is made in parallel with spool and store_image,
# and thumbnail_wait is how long the result then still waited for it.
PHASES = ("prepare", "spool", "png", "store_image", "thumbnail_wait", "store_thumbnail")


def _one_at_a_time(studio, character_id: str, model_id: str, n: int) -> list[dict[str, float]]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        [job] = studio.portraits.generate(character_id, model_id=model_id, seed=i)
        t_enqueued = time.perf_counter()
        [job] = studio.jobs.wait([job.id], timeout=60)
        wall = (time.perf_counter() - t0) * 1000
        assert job.status == "completed", job.last_error
        recipe = studio.portraits.get(job.result_id).recipe
        timings = recipe.timings_ms
        meta = recipe.provider_metadata
        row = {"wall": wall, "provider": job.provider_ms, "overhead": wall - job.provider_ms,
               "generate_call": (t_enqueued - t0) * 1000, **{p: timings.get(p, 0.0) for p in PHASES},
               "thumbnail": timings.get("thumbnail", 0.0)}
        if "http_ms" in meta:
            row["provider_http"] = meta["http_ms"] - job.provider_ms
            row["download"] = meta["download_ms"]
        accounted = row["generate_call"] + sum(row[p] for p in PHASES) + row.get("provider_http", 0) + row.get("download", 0)
        row["claim_and_rows"] = max(0.0, row["overhead"] - accounted)
        out.append(row)
    return out


def _figures(label: str, rows: list[dict[str, float]], note: str) -> list[Figure]:
    figs = [summarise("overhead", f"{label}: overhead per portrait", [r["overhead"] for r in rows],
                      target="< 25 ms median", note=note),
            summarise("overhead", f"{label}: provider's own time", [r["provider"] for r in rows])]
    for phase in ("generate_call", "provider_http", "download", *PHASES, "claim_and_rows"):
        if phase in rows[0]:
            figs.append(summarise("overhead", f"{label}:   phase {phase}", [r[phase] for r in rows]))
    figs.append(summarise("overhead", f"{label}:   (thumbnail, in parallel)", [r["thumbnail"] for r in rows],
                          note="beside spool and store_image"))
    return figs


def run(n: int = 100, scale_portraits: int = 0) -> list[Figure]:
    """Offline provider and a loopback fake returning a prepared 1024x1024 PNG, one job at a time."""
    figures = []
    home = fresh_home("overhead")
    with open_studio(home) as studio:
        character = studio.characters.create({"name": "Bench", "description": "benchmark character"})
        model = studio.models.get("offline/preview")
        _one_at_a_time(studio, character.id, model.id, 5)  # warm-up
        rows = _one_at_a_time(studio, character.id, model.id, n)
        figures += _figures("offline", rows, "local storage, jobs one at a time")

    prepared = render("prepared result", 1, 1024, 1024)
    image_file = fresh_home("prepared").with_suffix(".png")
    image_file.parent.mkdir(parents=True, exist_ok=True)
    image_file.write_bytes(prepared)
    server = ServerProcess(image_path=str(image_file))
    try:
        home = fresh_home("overhead-fake")
        with open_studio(home, {"SCRIPTED_URL": server.url, "SCRIPTED_KEY": "bench"}, plugins=[plugin]) as studio:
            character = studio.characters.create({"name": "Bench", "description": "benchmark character"})
            model = studio.models.get("scripted/oneshot")
            _one_at_a_time(studio, character.id, model.id, 5)
            rows = _one_at_a_time(studio, character.id, model.id, n)
            figures += _figures("loopback fake", rows, f"prepared 1024x1024 PNG ({len(prepared) // 1024} KB) over HTTP")
            if images.fast_png() is not None:  # what an install without the `fast` extra gets
                images.fast_png, fast_png = (lambda: None), images.fast_png
                try:
                    rows = _one_at_a_time(studio, character.id, model.id, max(20, n // 2))
                finally:
                    images.fast_png = fast_png
                figures.append(summarise("overhead", "loopback fake: overhead, Pillow PNG decoder", [r["overhead"] for r in rows],
                                         target="< 25 ms median", note="an install without the `fast` extra"))
            if scale_portraits:
                _bulk_portraits(studio, character.id, scale_portraits)
                rows = _one_at_a_time(studio, character.id, model.id, max(20, n // 5))
                figures.append(summarise("scaling", f"loopback fake: overhead with {scale_portraits:,} portraits in the home",
                                         [r["overhead"] for r in rows], target="< 25 ms median"))
    finally:
        server.close()
    return figures


def _bulk_portraits(studio, character_id: str, n: int) -> None:
    studio.ctx.db.execute(
        "INSERT INTO character_portraits SELECT 'bulk' || i, ?, 'local', 'local/portraits/x/' || i || '.png', "
        "'local/portraits/x/' || i || '.thumb.webp', 'p', '{}', 'bulkjob' || i, 0, 1024, 1024, now() FROM range(?) t(i)",
        [character_id, n])


if __name__ == "__main__":
    from tests.benchmarks.harness import machine_facts, render_table

    print(render_table(machine_facts(), run(30)))
