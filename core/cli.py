"""The `studio` command: characters, models, templates, generation, jobs and stats from a terminal.

Any error prints one line on stderr and exits non-zero: 2 for bad input and other errors the
studio reports, 1 for an unexpected one (`--debug` or STUDIO_DEBUG=1 shows its traceback).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core.errors import InvalidInput, StudioError
from core.images import MAX_IMAGE_BYTES

Handler = Callable[[Any, argparse.Namespace], Any]


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _print(value: Any, args: argparse.Namespace, text: Callable[[Any], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(_jsonable(value), indent=2, default=str))
    else:
        print(text(value))


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    cells = [headers] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _json_object(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput({flag: f"not valid JSON ({exc.msg} at character {exc.pos + 1})"}) from None
    if not isinstance(value, dict):
        raise InvalidInput({flag: f"must be a JSON object of fields, got a JSON {type(value).__name__}"})
    return value


def _read_image_file(path: str, flag: str) -> bytes:
    """The bytes of a file the user named; a missing file, a folder or an oversized file is bad input."""
    file = Path(path)
    try:
        if file.is_dir():
            raise InvalidInput({flag: f"{path} is a folder, not an image file"})
        if file.stat().st_size > MAX_IMAGE_BYTES:
            raise InvalidInput({flag: f"{path} is larger than {MAX_IMAGE_BYTES // 1_048_576} MB"})
        return file.read_bytes()
    except FileNotFoundError:
        raise InvalidInput({flag: f"no such file: {path}"}) from None
    except OSError as exc:
        raise InvalidInput({flag: f"cannot read {path}: {exc.strerror or exc}"}) from None


# -- characters ------------------------------------------------------------------------
def characters_list(studio, args):
    page = studio.characters.list(args.search, limit=args.limit, offset=args.offset)
    _print(page, args, lambda p: _table(
        [[c.id, c.name, c.gender, c.portrait_count, "public" if c.is_public else "", ", ".join(c.appearance_tags[:4])] for c in p.items],
        ["id", "name", "gender", "portraits", "", "tags"]) + f"\n{p.total} characters")


def characters_create(studio, args):
    data = _json_object(args.data, "--data") if args.data else {}
    for field in ("name", "description", "gender", "content_rating"):
        if getattr(args, field, None) is not None:
            data[field] = getattr(args, field)
    if args.tags:
        data["appearance_tags"] = args.tags
    if args.template:
        character = studio.templates.create_character(args.template, **data)
    else:
        character = studio.characters.create(data)
    _print(character, args, lambda c: f"created {c.name} ({c.id})")


def characters_show(studio, args):
    character = studio.characters.resolve(args.character)
    _print(character, args, lambda c: "\n".join(f"{k}: {v}" for k, v in c.model_dump().items() if v not in (None, [], "")))


def characters_delete(studio, args):
    character = studio.characters.resolve(args.character)
    studio.characters.delete(character.id)
    _print({"deleted": character.id}, args, lambda _: f"deleted {character.name} ({character.id})")


# -- portraits --------------------------------------------------------------------------
def _portrait_rows(page) -> str:
    return _table([[i, p.id, "primary" if p.is_primary else "", "" if p.recipe.seed is None else p.recipe.seed, (p.prompt or "")[:50]]
                   for i, p in enumerate(page.items, start=page.offset + 1)],
                  ["#", "id", "", "seed", "prompt"]) + f"\n{page.total} portraits"


def portraits_list(studio, args):
    character = studio.characters.resolve(args.character)
    _print(studio.portraits.list(character.id, limit=args.limit, offset=args.offset), args, _portrait_rows)


def portraits_reorder(studio, args):
    character = studio.characters.resolve(args.character)
    studio.portraits.reorder(character.id, args.portraits)
    _print(studio.portraits.list(character.id, limit=max(len(args.portraits), 10)), args, _portrait_rows)


# -- catalog -----------------------------------------------------------------------------
def models_list(studio, args):
    models = studio.models.list(modality=None)
    _print(models, args, lambda ms: _table(
        [[m.id[:8], m.provider_id, m.model_key, m.display_name, "i2i" if m.supports_i2i else "", m.priority,
          "active" if m.is_active else "inactive", "ready" if m.provider_configured else "no key"] for m in ms],
        ["id", "provider", "model", "name", "", "priority", "state", "provider"]))


def templates_list(studio, args):
    templates = studio.templates.list()
    _print(templates, args, lambda ts: _table([[t.id, t.name, t.summary] for t in ts], ["id", "name", "summary"]))


# -- generation and jobs ---------------------------------------------------------------
def generate(studio, args):
    character = studio.characters.owned(studio.characters.resolve(args.character).id)
    options = {"prompt": args.prompt or "", "n": args.n, "seed": args.seed, "model_id": args.model,
               "presets": {k: getattr(args, k) for k in ("pose", "expression", "outfit", "camera") if getattr(args, k)}}
    if args.reference:
        # Everything that can be checked is checked before the reference is stored.
        studio.portraits.preview_prompt(character.id, options)
        data = _read_image_file(args.reference, "--reference")
        studio.models.route(args.model, needs_i2i=True)
        options.update(reference="upload", reference_key=studio.uploads.add(data))
    jobs = studio.portraits.generate(character.id, options)
    if args.wait:
        jobs = _wait_with_progress(studio, [j.id for j in jobs], show=not args.json and sys.stderr.isatty())
    _print(jobs, args, lambda js: _table([[j.id, j.status, j.model_key, j.result_id, j.last_error] for j in js],
                                         ["job", "status", "model", "portrait", "error"]))
    if any(j.status == "failed" for j in jobs):
        raise SystemExit(1)


def _wait_with_progress(studio, ids: list[str], show: bool):
    while True:
        jobs = [studio.jobs.get(i) for i in ids]
        if show:
            done = sum(not j.is_active for j in jobs)
            stages = ", ".join(sorted({j.stage for j in jobs if j.is_active}))
            sys.stderr.write(f"\r{done}/{len(jobs)} done {stages:<40}")
            sys.stderr.flush()
        if all(not j.is_active for j in jobs):
            if show:
                sys.stderr.write("\n")
            return jobs
        studio.engine.runner.wait_for_change(0.5)


def jobs_list(studio, args):
    page = studio.jobs.list(status=args.status, limit=args.limit)
    _print(page, args, lambda p: _table(
        [[j.id, j.kind, j.status, j.stage, j.provider_id, j.model_key, j.attempts, (j.last_error or "")[:60]] for j in p.items],
        ["id", "kind", "status", "stage", "provider", "model", "attempts", "error"]))


def jobs_show(studio, args):
    _print(studio.jobs.get(args.job), args, lambda j: "\n".join(f"{k}: {v}" for k, v in j.model_dump().items()))


def jobs_cancel(studio, args):
    _print(studio.jobs.cancel(args.job), args, lambda j: f"{j.id}: {j.status}")


def jobs_retry(studio, args):
    _print(studio.jobs.retry(args.job), args, lambda j: f"{j.id}: {j.status}")


def stats(studio, args):
    data = studio.stats(all_users=args.all)

    def text(s):
        ms = lambda v: "-" if v is None else f"{v:.0f} ms"  # noqa: E731
        head = (f"total {s.total}  completed {s.completed}  failed {s.failed}  canceled {s.canceled}  "
                f"active {s.active}  failure rate {s.failure_rate:.1%}  spend ${s.spend:.2f}\n"
                f"provider time avg {ms(s.avg_provider_ms)}  p95 {ms(s.p95_provider_ms)}  overhead avg {ms(s.avg_overhead_ms)}")
        rows = [[m.provider_id, m.model_key, m.total, m.completed, m.failed, ms(m.avg_provider_ms), f"${m.spend:.2f}"]
                for m in s.per_model]
        return head + ("\n\n" + _table(rows, ["provider", "model", "total", "ok", "failed", "avg", "spend"]) if rows else "")

    _print(data, args, text)


# -- the database (no studio is opened: the copy opens the DuckDB file itself) ---------------
def db_copy(settings, args):
    from core.data.copy import copy_database

    report = copy_database(settings, args.to)
    _print(report, args, lambda r: r.summary())
    if not report.ok:
        raise SystemExit(1)


# -- parser ----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="studio", description="Character Studio from the command line.")
    parser.add_argument("--home", help="studio home folder (default: STUDIO_HOME)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and log details (also STUDIO_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True)
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON")

    def command(parent, name: str, handler: Handler, help: str, runner: bool = False,
                studio: bool = True) -> argparse.ArgumentParser:
        p = parent.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(handler=handler, needs_runner=runner, needs_studio=studio)
        return p

    chars = sub.add_parser("characters", help="list, create, show, delete characters").add_subparsers(dest="action", required=True)
    p = command(chars, "list", characters_list, "list characters (own and public)")
    p.add_argument("--search")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p = command(chars, "create", characters_create, "create a character")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--gender")
    p.add_argument("--content-rating", dest="content_rating")
    p.add_argument("--tags", help="comma-separated appearance tags")
    p.add_argument("--template", help="start from a template id")
    p.add_argument("--data", help="all fields as a JSON object")
    for name, handler, text in (("show", characters_show, "show a character"), ("delete", characters_delete, "delete a character and its images")):
        command(chars, name, handler, text).add_argument("character", help="id or name")

    portraits = sub.add_parser("portraits", help="a character's portraits: list, reorder").add_subparsers(
        dest="action", required=True)
    p = command(portraits, "list", portraits_list, "list a character's portraits in gallery order")
    p.add_argument("character", help="id or name")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p = command(portraits, "reorder", portraits_reorder,
                "put these portraits first, in this order; the others keep their order after them")
    p.add_argument("character", help="id or name")
    p.add_argument("portraits", nargs="+", metavar="PORTRAIT", help="portrait ids, first to last")

    models = sub.add_parser("models", help="the model catalog").add_subparsers(dest="action", required=True)
    command(models, "list", models_list, "list models")
    templates = sub.add_parser("templates", help="character templates").add_subparsers(dest="action", required=True)
    command(templates, "list", templates_list, "list templates")

    p = command(sub, "generate", generate, "generate portraits of a character", runner=True)
    p.add_argument("--character", required=True, help="id or name")
    p.add_argument("--prompt")
    for preset in ("pose", "expression", "outfit", "camera"):
        p.add_argument(f"--{preset}")
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--model", help="model id or key (default: routed)")
    p.add_argument("--seed", type=int)
    p.add_argument("--reference", help="path of a reference image")
    p.add_argument("--wait", action="store_true", help="wait for the jobs and show progress")

    jobs = sub.add_parser("jobs", help="generation jobs").add_subparsers(dest="action", required=True)
    p = command(jobs, "list", jobs_list, "list recent jobs")
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=50)
    for name, handler, text in (("show", jobs_show, "show a job"), ("cancel", jobs_cancel, "cancel a queued or running job"),
                                ("retry", jobs_retry, "retry a failed or canceled job")):
        command(jobs, name, handler, text, runner=name != "show").add_argument("job")

    p = command(sub, "stats", stats, "generation statistics")
    p.add_argument("--all", action="store_true", help="all users (admins)")
    db = sub.add_parser("db", help="the database: copy a home's DuckDB file to PostgreSQL").add_subparsers(
        dest="action", required=True)
    p = command(db, "copy", db_copy, "copy this home's DuckDB database into an empty PostgreSQL database and verify "
                                     "every table's row count (images stay where STUDIO_STORAGE_URL points)", studio=False)
    p.add_argument("--to", required=True, metavar="URL", help="postgresql://user:password@host:5432/database")
    from core.maintenance import register_cli  # studio gc, studio storage copy|check
    register_cli(sub, command)
    from core.assist.cli import register_cli as register_assist  # studio assist suggest
    register_assist(sub, command)
    from core.compare.cli import register_cli as register_compare  # studio compare run|list|show|keep|retry|sheet|delete
    register_compare(sub, command)
    return parser


def _say(message: str) -> None:
    print("studio: " + " ".join(message.split("\n")), file=sys.stderr)


def _setup_logging(debug: bool) -> None:
    """The log (with tracebacks) on stderr with --debug; otherwise the one error line says it all.
    A host that configured logging already keeps its own."""
    handler: logging.Handler = logging.StreamHandler(sys.stderr) if debug else logging.NullHandler()
    logging.basicConfig(level=logging.INFO if debug else logging.WARNING, handlers=[handler])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug
    from core.config import Settings
    from core.studio import Studio

    studio = None
    try:
        settings = Settings.from_env(home=args.home)  # a bad setting is one line, like any bad input
        debug = debug or settings.debug
        _setup_logging(debug)
        if not getattr(args, "needs_studio", True):
            args.handler(settings, args)
            return 0
        studio = Studio.open(settings=settings, user=settings.cli_user,
                             start_runner=getattr(args, "needs_runner", False))
        args.handler(studio, args)
    except StudioError as exc:
        _say(exc.message)
        return 2
    except KeyboardInterrupt:
        _say("interrupted; queued jobs continue when the studio next runs")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if debug:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        _say(f"unexpected error: {type(exc).__name__}: {first} (run again with --debug or STUDIO_DEBUG=1 for the traceback)")
        return 1
    finally:
        if studio is not None:
            studio.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
