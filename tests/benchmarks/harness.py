"""Timing helpers, machine facts and the result table for the benchmark suite."""
from __future__ import annotations

import os
import platform
import resource
import statistics
import tempfile
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import duckdb

from core import images
from core.studio import Studio
from tests.conftest import make_settings


@dataclass
class Figure:
    section: str
    metric: str
    median: float
    spread: str
    unit: str
    n: int
    target: str = ""
    baseline: str = ""
    note: str = ""
    samples: list[float] = field(default_factory=list, repr=False)


def summarise(section: str, metric: str, samples: list[float], unit: str = "ms", **extra) -> Figure:
    """Median and the 10th-90th percentile range of repeated measurements."""
    ordered = sorted(samples)
    if len(ordered) >= 5:
        q = statistics.quantiles(ordered, n=10)
        spread = f"p10 {q[0]:.1f} - p90 {q[-1]:.1f}"
    elif len(ordered) > 1:
        spread = f"min {ordered[0]:.1f} - max {ordered[-1]:.1f}"
    else:
        spread = "single run"
    return Figure(section, metric, statistics.median(ordered), spread, unit, len(ordered), samples=ordered, **extra)


def machine_facts() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    png = f"pyspng {version('pyspng')}" if images.fast_png() is not None else "Pillow (no `fast` extra)"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory": f"{mem:.0f} GiB",
            "python": platform.python_version(), "duckdb": duckdb.__version__, "png decoder": png,
            "platform": platform.platform()}


def rss_mb() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_home(label: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"studio-bench-{label}-")) / "home"


def open_studio(home: Path, env: dict[str, str] | None = None, plugins=(), **kwargs) -> Studio:
    return Studio.open(settings=make_settings(home, env), plugins=plugins, **kwargs)


def render_table(facts: dict[str, str], figures: list[Figure]) -> str:
    lines = ["Machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()), ""]
    header = ["section", "metric", "median", "spread", "unit", "n", "target", "baseline / note"]
    rows = [[f.section, f.metric, f"{f.median:.1f}" if f.median < 1e5 else f"{f.median:.0f}", f.spread, f.unit,
             str(f.n), f.target, "; ".join(x for x in (f.baseline, f.note) if x)] for f in figures]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def as_json(facts: dict[str, str], figures: list[Figure]) -> dict:
    return {"machine": facts, "figures": [asdict(f) for f in figures]}
