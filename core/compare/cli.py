"""`studio compare ...`: run, list, show, keep a cell, retry a cell, export the sheet, delete."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import InvalidInput


def _cells(comparison) -> str:
    from core.cli import _table

    plan = comparison.plan
    rows = [[c.job_id, c.status, (plan.prompts[c.prompt_index].text or "-")[:30], c.model_name,
             c.seed if c.takes_seed else "-", "" if c.cost is None else f"${c.cost:.3f}",
             "kept" if c.kept_portrait_id else "", (c.last_error or "")[:50]] for c in comparison.items]
    return (f"{comparison.name} ({comparison.id}), {comparison.cells} cells, estimated ${plan.estimated_cost:.2f}\n"
            + _table(rows, ["cell", "status", "prompt", "model", "seed", "cost", "", "error"]))


def _run(studio, args) -> None:
    from core.cli import _print

    character = studio.characters.resolve(args.character)
    spec = {"character_id": character.id, "name": args.name or "", "prompts": args.prompt or [],
            "replace": args.replace or [], "models": args.model or [], "seeds": args.seed or [],
            "presets": {k: getattr(args, k) for k in ("pose", "expression", "outfit", "camera") if getattr(args, k)}}
    comparison = studio.compare.run(spec, confirm=args.yes)
    if args.wait:
        ids = [c.job_id for c in comparison.items]
        while any(studio.jobs.get(i).is_active for i in ids):
            studio.engine.runner.wait_for_change(0.5)
        comparison = studio.compare.get(comparison.id)
    if args.sheet:
        _write(args.sheet, studio.compare.sheet(comparison.id)[0])
    _print(comparison, args, _cells)
    if any(c.status == "failed" for c in comparison.items):
        raise SystemExit(1)


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise InvalidInput({"--sheet": f"cannot write {path}: {exc.strerror or exc}"}) from None


def _list(studio, args) -> None:
    from core.cli import _print, _table

    character_id = studio.characters.resolve(args.character).id if args.character else None
    _print(studio.compare.list(character_id), args, lambda cs: _table(
        [[c.id, c.name, c.cells, c.created_at.strftime("%Y-%m-%d %H:%M")] for c in cs], ["id", "name", "cells", "created"]))


def _show(studio, args) -> None:
    from core.cli import _print

    _print(studio.compare.get(args.comparison), args, _cells)


def _keep(studio, args) -> None:
    from core.cli import _print

    act = studio.compare.set_primary if args.primary else studio.compare.keep
    _print(act(args.cell), args, lambda p: f"kept as portrait {p.id}{' (primary)' if p.is_primary else ''}")


def _retry(studio, args) -> None:
    from core.cli import _print

    _print(studio.compare.retry(args.cell), args, lambda c: f"{c.job_id}: {c.status}")


def _sheet(studio, args) -> None:
    from core.cli import _print

    data, name = studio.compare.sheet(args.comparison)
    out = args.out or name
    _write(out, data)
    _print({"file": out, "bytes": len(data)}, args, lambda r: f"wrote {r['file']} ({r['bytes']} bytes)")


def _delete(studio, args) -> None:
    from core.cli import _print

    studio.compare.delete(args.comparison)
    _print({"deleted": args.comparison}, args, lambda r: f"deleted comparison {r['deleted']}")


def register_cli(sub: Any, command: Any) -> None:
    compare = sub.add_parser("compare", help="compare a character across prompts, models and seeds").add_subparsers(
        dest="action", required=True)
    p = command(compare, "run", _run, "queue a comparison grid (prompts x models x seeds) as one batch", runner=True)
    p.add_argument("--character", required=True, help="id or name")
    p.add_argument("--prompt", action="append", help="a prompt variant (repeat for more)")
    p.add_argument("--replace", action="append", metavar="PHRASE",
                   help="prompt search/replace: first the phrase in the one --prompt, then each replacement")
    p.add_argument("--model", action="append", help="model id or key (repeat; default: routed)")
    p.add_argument("--seed", action="append", type=int, help="a seed (repeat; default: one random)")
    for preset in ("pose", "expression", "outfit", "camera"):
        p.add_argument(f"--{preset}")
    p.add_argument("--name")
    p.add_argument("--yes", action="store_true", help="confirm a cost above STUDIO_COMPARE_CONFIRM_USD")
    p.add_argument("--wait", action="store_true", help="wait for every cell")
    p.add_argument("--sheet", metavar="FILE", help="write the labelled PNG sheet here (with --wait: when done)")
    p = command(compare, "list", _list, "list your comparisons")
    p.add_argument("--character", help="id or name")
    for name, handler, text in (("show", _show, "show a comparison's cells"), ("delete", _delete, "delete a comparison")):
        command(compare, name, handler, text, runner=name == "delete").add_argument("comparison")
    p = command(compare, "keep", _keep, "make a finished cell a portrait of its character")
    p.add_argument("cell", help="the cell's job id")
    p.add_argument("--primary", action="store_true", help="and make it the primary portrait")
    command(compare, "retry", _retry, "queue a failed cell again", runner=True).add_argument("cell", help="the cell's job id")
    p = command(compare, "sheet", _sheet, "write the grid as one labelled PNG")
    p.add_argument("comparison")
    p.add_argument("--out", metavar="FILE")
