"""Storage maintenance: garbage collection and copying a studio's images to another store.

`gc` compares what the store holds with what the database points to:
- orphans: objects no row points to (a crash between write and insert, a row deleted while
  the store was down). They are deleted only with ``apply=True`` and only when older than
  the grace period, so an image being stored right now is never taken.
- missing: rows whose object is gone. Reported, never changed.
- expired uploads: uploaded reference images never attached to a character (nor used by a
  portrait, scene or job) older than ``upload_max_age``; with ``apply=True`` the upload row
  and the object are deleted.
- leftover spool files: paid-for images spooled (files on local disk; rows of `job_spool` on
  PostgreSQL) whose job no longer needs them (completed, failed, canceled or deleted; a crash
  between the result row and the spool's removal leaves one). Deleted with ``apply=True``; the
  spool of a job still at work (storing, running, queued) is never touched, and while an image is
  spooled the keys its job writes are never orphans.

`copy_storage` copies every object to another store URL and verifies size and sha256 of each
copy, so a team can switch ``STUDIO_STORAGE_URL`` afterwards (keys are relative to the URL).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from core.characters import delete_upload
from core.context import Actor, Context
from core.data import marks
from core.errors import Forbidden, InvalidInput, StorageError
from core.images import sha256
from core.engine.spool import DatabaseSpool, FileSpool, open_spool
from core.models import ACTIVE_STATUSES
from core.storage import PROBE_PREFIX, ImageStore, key_kind, redact_url, result_key, thumbnail_key

log = logging.getLogger(__name__)



class OrphanObject(BaseModel):
    """A stored object no row points to."""

    key: str
    kind: str
    size: int
    modified_at: datetime | None = None
    age_seconds: float | None = None
    deletable: bool = Field(description="older than the grace period")
    deleted: bool = False
    error: str | None = None


class MissingObject(BaseModel):
    """A row whose object is not in the store."""

    table: str
    column: str
    row_id: str
    key: str
    owner: str | None = None
    character_id: str | None = None


class ExpiredUpload(BaseModel):
    """An uploaded reference image never attached to anything, older than the upload age limit."""

    key: str
    owner: str
    size: int
    created_at: datetime
    age_seconds: float
    present: bool
    deleted: bool = False
    error: str | None = None


class LeftoverSpool(BaseModel):
    """A spooled image (or an interrupted spool write) whose job no longer needs it."""

    name: str = Field(description="file name in the spool folder, or job_spool/{job id} for a row of the shared spool")
    job_id: str
    job_status: str = Field(description="completed, failed, canceled, or deleted (no row)")
    size: int
    deleted: bool = False
    error: str | None = None


class GcReport(BaseModel):
    storage_url: str
    applied: bool
    grace_seconds: int
    upload_max_age: int
    objects_scanned: int = 0
    bytes_scanned: int = 0
    referenced_keys: int = 0
    orphans: list[OrphanObject] = Field(default_factory=list)
    missing: list[MissingObject] = Field(default_factory=list)
    expired_uploads: list[ExpiredUpload] = Field(default_factory=list)
    leftover_spool: list[LeftoverSpool] = Field(default_factory=list)
    deleted_objects: int = 0
    deleted_spool_files: int = 0
    bytes_freed: int = 0
    errors: list[str] = Field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def deletable(self) -> list[OrphanObject]:
        return [o for o in self.orphans if o.deletable]

    def summary(self) -> str:
        """A few lines for people (the CLI prints this; `--json` prints the model)."""
        verb = "deleted" if self.applied else "to delete with --apply"
        young = len(self.orphans) - len(self.deletable)
        lines = [
            f"Storage {self.storage_url}: {self.objects_scanned} objects ({_size(self.bytes_scanned)}), "
            f"{self.referenced_keys} keys referenced by rows.",
            f"Orphans: {len(self.orphans)}; {len(self.deletable)} older than {self.grace_seconds} s ({verb})"
            f"{f', {young} younger kept' if young else ''}.",
            f"Rows whose object is missing: {len(self.missing)} (reported only).",
            f"Expired uploads (never attached, older than {self.upload_max_age} s): {len(self.expired_uploads)} ({verb}).",
            f"Leftover spool files (of completed, failed, canceled or deleted jobs): {len(self.leftover_spool)} ({verb}).",
        ]
        if self.applied:
            lines.append(f"Deleted {self.deleted_objects} objects, freed {_size(self.bytes_freed)}; "
                         f"deleted {self.deleted_spool_files} spool files.")
        for o in self.orphans[:20]:
            state = "deleted" if o.deleted else ("old enough" if o.deletable else "within grace period")
            lines.append(f"  orphan {o.kind:<9} {o.key} ({_size(o.size)}, {state}){f' ERROR {o.error}' if o.error else ''}")
        for m in self.missing[:20]:
            lines.append(f"  missing {m.table}.{m.column} row {m.row_id}: {m.key}")
        for u in self.expired_uploads[:20]:
            lines.append(f"  expired upload {u.key} ({'deleted' if u.deleted else 'expired'})")
        for f in self.leftover_spool[:20]:
            lines.append(f"  spool {f.name} ({_size(f.size)}, job {f.job_status}{', deleted' if f.deleted else ''})"
                         f"{f' ERROR {f.error}' if f.error else ''}")
        lines += [f"  error: {e}" for e in self.errors[:20]]
        return "\n".join(lines)


class CopyFailure(BaseModel):
    key: str
    error: str


class CopyReport(BaseModel):
    source_url: str
    target_url: str
    objects: int = 0
    copied: int = 0
    already_present: int = 0
    verified: int = 0
    bytes_copied: int = 0
    failures: list[CopyFailure] = Field(default_factory=list)
    missing_in_source: list[MissingObject] = Field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        lines = [
            f"Copied {self.copied} of {self.objects} objects ({_size(self.bytes_copied)}) from {self.source_url} "
            f"to {self.target_url}; {self.already_present} were already there; {self.verified} verified (size and sha256).",
        ]
        if self.failures:
            lines.append(f"{len(self.failures)} objects FAILED (run the copy again; it skips verified objects):")
            lines += [f"  {f.key}: {f.error}" for f in self.failures[:20]]
        if self.missing_in_source:
            lines.append(f"{len(self.missing_in_source)} rows point to objects the source does not have (see `studio gc`).")
        if self.ok:
            lines.append(f"Next: set STUDIO_STORAGE_URL={self.target_url} and restart the studio.")
        return "\n".join(lines)


class Maintenance:
    """Admin operations on the image store: `gc` and `copy_storage`."""

    def __init__(self, ctx: Context, actor: Actor):
        self.ctx = ctx
        self.actor = actor

    def _require_admin(self) -> None:
        if not self.actor.is_admin:
            raise Forbidden("Only administrators can run storage maintenance.")

    # -- references ----------------------------------------------------------------------
    def _rows(self) -> list[MissingObject]:
        """Every (row, key) the database points to, as candidate `MissingObject`s."""
        db = self.ctx.db
        rows: list[MissingObject] = []
        for table in ("character_portraits", "scene_images", "comparison_cells"):
            for r in db.fetchall(f"SELECT id, owner, character_id, image_key, thumbnail_key FROM {table}"):
                for column in ("image_key", "thumbnail_key"):
                    rows.append(MissingObject(table=table, column=column, row_id=r["id"], key=r[column],
                                              owner=r["owner"], character_id=r["character_id"]))
        for r in db.fetchall("SELECT id, owner, reference_image_key FROM characters WHERE reference_image_key IS NOT NULL"):
            rows.append(MissingObject(table="characters", column="reference_image_key", row_id=r["id"],
                                      key=r["reference_image_key"], owner=r["owner"], character_id=r["id"]))
        for r in db.fetchall("SELECT key, owner FROM uploads"):
            rows.append(MissingObject(table="uploads", column="key", row_id=r["key"], key=r["key"], owner=r["owner"]))
        return rows

    def _spool(self) -> FileSpool | DatabaseSpool:
        return open_spool(self.ctx.db, self.ctx.settings.spool_dir)

    def _in_flight(self) -> set[str]:
        """Keys that jobs still at work will write or read (a storing job's image has no row yet),
        and those of every job whose paid-for image is spooled, whatever its status says."""
        keys: set[str] = set()
        ref = self.ctx.db.dialect.json_text("request", "reference_key")
        spooled = sorted(self._spool().ids())
        rows = self.ctx.db.fetchall(
            f"SELECT id, kind, owner, character_id, {ref} AS ref FROM jobs WHERE status IN ({marks(ACTIVE_STATUSES)})"
            + (f" OR id IN ({marks(spooled)})" if spooled else ""), [*ACTIVE_STATUSES, *spooled])
        for r in rows:
            key = result_key(r["kind"], r["owner"], r["character_id"], r["id"])
            keys.update((key, thumbnail_key(key)))
            if r["ref"]:
                keys.add(r["ref"])
        return keys

    def _upload_uses(self) -> set[str]:
        """Upload keys in use: a character's reference, or the reference a portrait or scene was made from."""
        ref = self.ctx.db.dialect.json_text("recipe", "reference_key")
        rows = self.ctx.db.fetchall(
            "SELECT reference_image_key AS k FROM characters WHERE reference_image_key IS NOT NULL "
            f"UNION SELECT {ref} FROM character_portraits UNION SELECT {ref} FROM scene_images")
        return {r["k"] for r in rows if r["k"]}

    def _expired_uploads(self, max_age: int) -> list[dict[str, Any]]:
        cutoff = time.time() - max_age
        used = self._upload_uses() | self._in_flight()
        rows = self.ctx.db.fetchall("SELECT key, owner, size, created_at FROM uploads ORDER BY created_at")
        return [r for r in rows if r["key"] not in used and _utc_ts(r["created_at"]) <= cutoff]

    # -- gc ------------------------------------------------------------------------------
    def gc(self, apply: bool = False, grace_seconds: int | None = None, upload_max_age: int | None = None) -> GcReport:
        """Find orphans, missing objects and expired uploads; delete (only) what is safe with `apply`."""
        self._require_admin()
        settings = self.ctx.settings
        grace = int(settings.gc_grace_seconds if grace_seconds is None else grace_seconds)
        max_age = int(settings.upload_max_age if upload_max_age is None else upload_max_age)
        if grace < 0 or max_age < 0:
            raise InvalidInput({"grace_seconds": "must be 0 or more", "upload_max_age": "must be 0 or more"})
        started = time.perf_counter()
        store = self.ctx.store
        report = GcReport(storage_url=store.display_url, applied=apply, grace_seconds=grace, upload_max_age=max_age)

        # Rows before and after listing: a row present in both whose object was not listed is
        # really missing; a key referenced in either snapshot (or by a job at work) is kept.
        before = self._rows()
        in_flight = self._in_flight()
        listing = {key: (size, mtime) for key, size, mtime in store.keys(include_partial=True)}
        after = self._rows()
        in_flight |= self._in_flight()
        after_ids = {(m.table, m.column, m.row_id, m.key) for m in after}
        referenced = {m.key for m in before} | {m.key for m in after} | in_flight

        expired_rows = self._expired_uploads(max_age)
        expired_keys = {r["key"] for r in expired_rows}
        report.objects_scanned = len(listing)
        report.bytes_scanned = sum(size for size, _ in listing.values())
        report.referenced_keys = len(referenced - expired_keys)

        now = time.time()
        for key, (size, mtime) in sorted(listing.items()):
            if key in referenced:
                continue
            age = None if mtime is None else max(0.0, now - mtime)
            report.orphans.append(OrphanObject(
                key=key, kind=key_kind(key), size=size, age_seconds=age,
                modified_at=None if mtime is None else datetime.fromtimestamp(mtime, timezone.utc).replace(tzinfo=None),
                deletable=age is not None and age >= grace))
        seen_missing = set()
        for m in before:
            ident = (m.table, m.column, m.row_id, m.key)
            if ident in after_ids and m.key not in listing and ident not in seen_missing:
                seen_missing.add(ident)
                report.missing.append(m)
        for r in expired_rows:
            report.expired_uploads.append(ExpiredUpload(
                key=r["key"], owner=r["owner"], size=r["size"], created_at=r["created_at"],
                age_seconds=max(0.0, now - _utc_ts(r["created_at"])), present=r["key"] in listing))

        leftovers = self._leftover_spool()
        report.leftover_spool = [spool for spool, _ in leftovers.values()]
        if apply:
            self._apply(report, listing)
            self._delete_spool(report, leftovers)
        report.duration_ms = (time.perf_counter() - started) * 1000
        log.info("gc on %s: %d objects, %d orphans, %d missing, %d expired uploads, applied=%s",
                 report.storage_url, report.objects_scanned, len(report.orphans), len(report.missing),
                 len(report.expired_uploads), apply)
        return report

    def _apply(self, report: GcReport, listing: dict[str, tuple[int, float | None]]) -> None:
        store = self.ctx.store
        # Last look at the database right before deleting: nothing a row now points to goes.
        protected = {m.key for m in self._rows()} | self._in_flight()
        still_expired = {r["key"] for r in self._expired_uploads(report.upload_max_age)}
        for orphan in report.orphans:
            if not orphan.deletable or orphan.key in protected:
                continue
            try:
                store.delete(orphan.key)
            except StorageError as exc:
                orphan.error = exc.message
                report.errors.append(exc.message)
                continue
            orphan.deleted = True
            report.deleted_objects += 1
            report.bytes_freed += orphan.size
        for upload in report.expired_uploads:
            if upload.key not in still_expired:
                continue
            with self.ctx.db.transaction() as cur:
                delete_upload(cur, upload.key)
            if upload.present:
                try:
                    store.delete(upload.key)
                except StorageError as exc:  # the row is gone: the object is an orphan for the next run
                    upload.error = exc.message
                    report.errors.append(exc.message)
                    continue
                report.deleted_objects += 1
                report.bytes_freed += listing.get(upload.key, (0, None))[0]
            upload.deleted = True

    # -- spool ---------------------------------------------------------------------------
    def _leftover_spool(self) -> dict[str, tuple[LeftoverSpool, Any]]:
        """Spooled images whose job is finished or gone, by name, with what tells them from a later
        spool of the same job (a job run again meanwhile spools anew, which is then kept): a file's
        (inode, mtime), a `job_spool` row's creation time."""
        spool = self._spool()
        files: dict[str, tuple[str, int, Any]] = {}
        if isinstance(spool, DatabaseSpool):
            files = {f"job_spool/{job_id}": (job_id, size, created) for job_id, size, created in spool.entries()}
        folder = spool.folder if isinstance(spool, FileSpool) else None
        for path in (folder.iterdir() if folder is not None and folder.is_dir() else ()):
            if path.suffix in (".img", ".tmp") and path.is_file():
                try:
                    st = path.stat()
                except FileNotFoundError:  # stored and removed by the runner meanwhile
                    continue
                files[path.name] = (path.stem, st.st_size, (st.st_ino, st.st_mtime_ns))
        statuses = self._job_statuses({job_id for job_id, _, _ in files.values()})
        return {name: (LeftoverSpool(name=name, job_id=job_id, job_status=statuses.get(job_id, "deleted"), size=size), ident)
                for name, (job_id, size, ident) in sorted(files.items())
                if statuses.get(job_id) not in ACTIVE_STATUSES}

    def _job_statuses(self, job_ids: set[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        ids = sorted(job_ids)
        return {r["id"]: r["status"] for r in self.ctx.db.fetchall(f"SELECT id, status FROM jobs WHERE id IN ({marks(ids)})", ids)}

    def _delete_spool(self, report: GcReport, leftovers: dict[str, tuple[LeftoverSpool, Any]]) -> None:
        spool = self._spool()
        if isinstance(spool, DatabaseSpool):  # each delete checks its job's status as it runs
            for item, created in leftovers.values():
                if spool.remove_leftover(item.job_id, created):
                    item.deleted = True
                    report.deleted_spool_files += 1
            return
        # Last look right before deleting: a job queued again meanwhile keeps its (new) spool.
        still = self._leftover_spool()
        for name, (spool, ident) in leftovers.items():
            if name not in still or still[name][1] != ident:
                continue
            try:
                (self.ctx.settings.spool_dir / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                spool.error = f"could not delete the spool file {name}: {exc.strerror or exc}"
                report.errors.append(spool.error)
                continue
            spool.deleted = True
            report.deleted_spool_files += 1

    # -- copy ----------------------------------------------------------------------------
    def copy_storage(self, to_url: str, *, workers: int = 8, check: bool = True) -> CopyReport:
        """Copy every object to `to_url` and verify each copy (size and sha256).

        Safe to repeat: objects already present with the same bytes are skipped. Stop the
        studio first (or run again afterwards) so images stored during the copy are included.
        """
        self._require_admin()
        source = self.ctx.store
        if not to_url or to_url.rstrip("/") == source.url.rstrip("/"):
            raise InvalidInput({"to": "give a storage URL other than the current STUDIO_STORAGE_URL"})
        target = ImageStore.from_settings(self.ctx.settings, to_url, check=check)
        if target.fs.protocol == source.fs.protocol and target.root == source.root:
            raise InvalidInput({"to": "the target is the same store as the source"})
        started = time.perf_counter()
        report = CopyReport(source_url=source.display_url, target_url=redact_url(to_url))
        listing = [(k, size) for k, size, _ in source.keys() if not k.startswith(PROBE_PREFIX)]
        report.objects = len(listing)
        listed = {k for k, _ in listing}
        seen = set()
        for m in self._rows():
            if m.key not in listed and (m.table, m.column, m.row_id) not in seen:
                seen.add((m.table, m.column, m.row_id))
                report.missing_in_source.append(m)

        def one(item: tuple[str, int]) -> tuple[str, str, int, str | None]:
            key, _ = item
            try:
                data = source.read(key)
                digest = sha256(data)
                present = target.info(key)
                if present is not None and present[0] == len(data) and sha256(target.read(key)) == digest:
                    return key, "present", 0, None
                target.write(key, data)
                back = target.read(key)
                if len(back) != len(data) or sha256(back) != digest:
                    return key, "failed", 0, f"verification failed: wrote {len(data)} bytes, read back {len(back)} with another hash"
                return key, "copied", len(data), None
            except StorageError as exc:
                return key, "failed", 0, exc.message

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for key, state, nbytes, error in pool.map(one, listing):
                if state == "failed":
                    report.failures.append(CopyFailure(key=key, error=error or "failed"))
                    continue
                report.verified += 1
                if state == "copied":
                    report.copied += 1
                    report.bytes_copied += nbytes
                else:
                    report.already_present += 1
        report.duration_ms = (time.perf_counter() - started) * 1000
        log.info("copied %d objects to %s (%d failures)", report.copied, report.target_url, len(report.failures))
        return report



def _utc_ts(value: datetime) -> float:
    """Epoch seconds of a naive-UTC database timestamp."""
    return value.replace(tzinfo=timezone.utc).timestamp()


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


__all__ = ["Maintenance", "GcReport", "CopyReport", "OrphanObject", "MissingObject", "ExpiredUpload", "LeftoverSpool",
           "CopyFailure"]



# -- command line (`studio gc`, `studio storage copy|check`); core/cli.py calls register_cli ----------
def _emit(report: BaseModel, args: Any) -> None:
    import json

    if getattr(args, "json", False):
        print(json.dumps(report.model_dump(mode="json"), indent=2, default=str))
    else:
        print(report.summary())  # type: ignore[attr-defined]


def _cli_gc(studio: Any, args: Any) -> None:
    report = studio.maintenance.gc(apply=args.apply, grace_seconds=args.grace, upload_max_age=args.upload_max_age)
    _emit(report, args)


def _cli_copy(studio: Any, args: Any) -> None:
    report = studio.maintenance.copy_storage(args.to, workers=args.workers)
    _emit(report, args)
    if not report.ok:
        raise StorageError(f"{len(report.failures)} objects were not copied; run the copy again (verified objects are skipped).")


def _cli_check(studio: Any, args: Any) -> None:
    store = studio.ctx.store
    store.check()
    info = {"storage_url": store.display_url, "ok": True, "presigned_urls": store.signs_urls,
            "sign_expiry": store.sign_expiry if store.signs_urls else None}
    if getattr(args, "json", False):
        import json

        print(json.dumps(info, indent=2))
    else:
        print(f"Storage {store.display_url}: reachable, writable"
              f"{f', presigned URLs valid {store.sign_expiry}s' if store.signs_urls else ', images served as bytes'}.")


def register_cli(sub: Any, command: Any) -> None:
    """Add `studio gc` and `studio storage copy|check` to the CLI's subparsers."""
    p = command(sub, "gc", _cli_gc, "find orphan objects, rows whose object is missing and expired uploads; "
                                    "delete old orphans and expired uploads with --apply")
    p.add_argument("--apply", action="store_true", help="delete orphans older than the grace period and expired uploads")
    p.add_argument("--grace", type=int, default=None, metavar="SECONDS",
                   help="only orphans older than this are deleted (default: STUDIO_GC_GRACE_SECONDS or 86400)")
    p.add_argument("--upload-max-age", dest="upload_max_age", type=int, default=None, metavar="SECONDS",
                   help="uploads never attached for this long expire (default: STUDIO_UPLOAD_MAX_AGE or 7 days)")
    storage = sub.add_parser("storage", help="the image store: check it, copy it to another store")
    actions = storage.add_subparsers(dest="action", required=True)
    p = command(actions, "copy", _cli_copy, "copy every image to another store URL and verify each copy (size, sha256)")
    p.add_argument("--to", required=True, metavar="URL", help="target storage URL, e.g. s3://bucket/prefix")
    p.add_argument("--workers", type=int, default=8, help="parallel copies (default 8)")
    command(actions, "check", _cli_check, "check that the store is reachable and writable")
