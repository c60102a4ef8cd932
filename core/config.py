"""Settings from the environment (and, in the app, Streamlit secrets)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from core import redaction
from core.errors import InvalidSetting

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"


# Credentials the studio itself sends (S3); provider keys are checked by each provider.
SENT_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def clean_secret(name: str, value: str) -> str:
    """A key as it is used: surrounding whitespace (a pasted newline) removed. A key that still holds
    a control or invisible character cannot be sent in a header: refused, naming the variable only."""
    value = value.strip()
    if not value.isprintable():
        raise InvalidSetting(f"{name} contains a control or invisible character; set it again without it.")
    return value


def load_secrets(values: Mapping[str, str]) -> dict[str, str]:
    """The settings with secret-named values stripped and registered for redaction."""
    out = dict(values)
    secret_names = [n for n in out if redaction.is_secret_name(n)]
    redaction.register(out[n] for n in secret_names)  # as set, too: a raw value may surface in an error
    for name in secret_names:
        out[name] = clean_secret(name, out[name]) if name in SENT_SECRETS else out[name].strip()
    return out


def check_database_url(url: str) -> str:
    """A PostgreSQL URL (`postgresql://user:password@host:5432/db`); its password is never shown."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise InvalidSetting("STUDIO_DATABASE_URL must be a postgresql:// URL (unset it to use the DuckDB file).")
    if parsed.password:
        redaction.register([parsed.password])
    return url


def parse_budget(value: str, name: str) -> float | None:
    """A monthly budget in USD: empty means unlimited; a negative or non-numeric value is refused."""
    value = value.strip().lstrip("$").strip()
    if not value:
        return None
    try:
        amount = float(value)
    except ValueError:
        raise InvalidSetting(f"{name} must be an amount in USD, like 25 or 7.50 (empty: unlimited).") from None
    if not amount >= 0 or amount == float("inf"):
        raise InvalidSetting(f"{name} must be zero or more USD (empty: unlimited).")
    return amount
def _number(env: Mapping[str, str], name: str, default, kind: type, *, minimum: float):
    """A numeric setting; a value that is not a number, or under `minimum`, names the variable."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise InvalidSetting(f"{name} must be a {'whole ' if kind is int else ''}number of at least {minimum:g}.")
    return value


def default_home() -> Path:
    """A git-ignored folder under data/ in a checkout, else a folder in the user's home."""
    if (DATA_DIR / "presets.json").exists() and os.access(DATA_DIR, os.W_OK):
        return DATA_DIR / "home"
    return Path.home() / ".character-studio"


@dataclass(frozen=True)
class Settings:
    """Everything the core reads from outside. Build with `Settings.from_env()`."""

    home: Path
    db_path: Path
    storage_url: str
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    load_plugins: str | None = None
    max_attempts: int = 3
    job_deadline: int = 6 * 3600  # seconds a job's transient provider errors are retried (docs/plugins.md)
    start_runner: bool = True
    local_user: str = "local"
    admins: frozenset[str] = frozenset()
    sign_expiry: int = 3600
    gc_grace_seconds: int = 86400
    upload_max_age: int = 7 * 86400
    db_threads: int = 1
    database_url: str | None = None  # PostgreSQL, shared by several servers; None: the DuckDB file `db_path`
    lease_seconds: float = 30.0  # PostgreSQL: how long a server's claim on a job lasts unless renewed
    runner_slots: int = 0  # PostgreSQL: provider calls one server makes at once (0: only the providers' limits)
    default_budget: float | None = None  # USD each user may spend per calendar month (UTC); None: unlimited
    assist_rate: int = 30  # AI assist calls per user per minute (0: no limit)
    assist_timeout: float = 60.0  # seconds one AI assist call may take, streamed or not

    @classmethod
    def from_env(
        cls,
        home: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        **overrides,
    ) -> "Settings":
        env = dict(os.environ if env is None else env)
        home_path = Path(home or env.get("STUDIO_HOME") or default_home()).expanduser().resolve()
        db_path = Path(env.get("STUDIO_DB") or home_path / "studio.duckdb").expanduser()
        storage_url = env.get("STUDIO_STORAGE_URL") or (home_path / "images").as_uri()
        merged = {k: v for k, v in env.items()}
        if secrets:
            merged.update({k: str(v) for k, v in secrets.items() if isinstance(v, (str, int))})
        merged = load_secrets(merged)
        database_url = (env.get("STUDIO_DATABASE_URL") or "").strip() or None
        if database_url is not None:
            database_url = check_database_url(database_url)
        values = dict(
            home=home_path,
            db_path=db_path,
            storage_url=storage_url,
            secrets=merged,
            load_plugins=env.get("STUDIO_LOAD_PLUGINS"),
            max_attempts=int(env.get("STUDIO_MAX_ATTEMPTS", "3")),
            job_deadline=int(env.get("STUDIO_JOB_DEADLINE", str(6 * 3600))),
            local_user=env.get("STUDIO_LOCAL_USER", "local"),
            admins=frozenset(a.strip().lower() for a in env.get("STUDIO_ADMINS", "").split(",") if a.strip()),
            sign_expiry=int(env.get("STUDIO_SIGN_EXPIRY", "3600")),
            gc_grace_seconds=int(env.get("STUDIO_GC_GRACE_SECONDS", "86400")),
            upload_max_age=int(env.get("STUDIO_UPLOAD_MAX_AGE", str(7 * 86400))),
            db_threads=int(env.get("STUDIO_DB_THREADS", "1")),
            database_url=database_url,
            lease_seconds=float(env.get("STUDIO_LEASE_SECONDS", "30")),
            runner_slots=int(env.get("STUDIO_RUNNER_SLOTS", "0")),
            default_budget=parse_budget(env.get("STUDIO_DEFAULT_BUDGET", ""), "STUDIO_DEFAULT_BUDGET"),
            assist_rate=_number(env, "STUDIO_ASSIST_RATE", 30, int, minimum=0),
            assist_timeout=_number(env, "STUDIO_ASSIST_TIMEOUT", 60.0, float, minimum=0.1),
        )
        values.update(overrides)
        return cls(**values)

    def secret(self, name: str) -> str | None:
        """A secret (provider key) by its usual environment name; empty counts as absent."""
        value = self.secrets.get(name)
        return value or None

    def is_admin(self, user_id: str, email: str | None = None) -> bool:
        """Whether the deployment names this user an admin: the local user, or an id or email listed
        in STUDIO_ADMINS (compared without case). Nothing a caller says changes this."""
        named = {user_id.lower(), (email or "").lower()} - {""}
        return user_id == self.local_user or bool(named & self.admins)

    @property
    def spool_dir(self) -> Path:
        """Local folder that holds paid-for image bytes until they are in the image store."""
        return self.home / "spool"
