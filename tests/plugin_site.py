"""Installing a plugin the way pip does, without pip: a distribution's metadata with a
`character_studio` entry point, in a folder the test puts on sys.path."""
from __future__ import annotations

from pathlib import Path


def install_distribution(site: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """Write `{name}-{version}.dist-info` (METADATA and entry_points.txt) into `site`."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[character_studio]\n{lines}")
