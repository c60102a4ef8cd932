"""The one place secrets are taken out of text before it is stored, logged or shown.

Secret values are registered once, when they are loaded (`Settings.from_env` registers every
variable whose name ends in `_KEY`, `_TOKEN`, `_SECRET`, `_PASSWORD` or `_KEY_ID`, AWS credentials
included; a `Provider` registers the keys it declares and the key it sends). `redact(text)` replaces
every registered value, in the forms it takes in messages (as set, whitespace-stripped, and escaped
as `repr`, JSON or a URL writes it), with `***`. Everything that keeps or shows text goes through it:
`StudioError` messages, provider `Health` messages, a job's `last_error`, and every log record of the
process (through the log-record factory; a filter on a logger would not see its children's records).

Redact before truncating: `clip(text, n)` does both in that order, so a key cut in two by the limit
is never kept half.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote

SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_KEY_ID")
MASK = "***"
MIN_LENGTH = 4  # shorter values are no real key and would mask ordinary words

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None
_factory_installed = False


def is_secret_name(name: str) -> bool:
    """Whether a setting holds a secret by its name (AWS_SECRET_ACCESS_KEY, FAL_KEY_ID, ...)."""
    return name.upper().endswith(SECRET_SUFFIXES)


def _forms(value: str) -> set[str]:
    """The ways a value shows up in messages: as is, stripped, and escaped by repr, JSON and URLs."""
    out: set[str] = set()
    for v in {value, value.strip()}:
        out |= {v, v.encode("unicode_escape").decode("ascii"), json.dumps(v)[1:-1], quote(v, safe=""),
                repr(v.encode("utf-8", "backslashreplace"))[2:-1]}
    return {f for f in out if len(f) >= MIN_LENGTH}


def register(values: Iterable[str | None]) -> None:
    """Add secret values (None and short values are ignored); from now on `redact` removes them."""
    global _pattern
    new = set()
    for value in values:
        if value and len(value.strip()) >= MIN_LENGTH:
            new |= _forms(value)
    with _lock:
        if new <= _values:
            return
        _values.update(new)
        ordered = sorted(_values, key=len, reverse=True)  # the longest form wins where forms overlap
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))
        _install_log_factory()


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def clip(text: str, limit: int) -> str:
    """Redact, then cut to `limit` characters (never the other way round)."""
    return redact(text)[:limit]


def _install_log_factory() -> None:
    """Redact every log record as it is made: its message, and its traceback and stack if any."""
    global _factory_installed
    if _factory_installed:
        return
    _factory_installed = True
    previous = logging.getLogRecordFactory()
    formatter = logging.Formatter()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: logging reports it itself
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            text = formatter.formatException(record.exc_info)
            if redact(text) != text:
                record.exc_text = redact(text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)
