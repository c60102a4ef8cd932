"""Settings from the environment (and, in the app, Streamlit secrets)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from core import redaction
from core.auth import DEFAULT_PROXY_HEADER, LOOPBACK, AuthMode, Network, parse_mode, parse_networks, parse_proxy_header
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
def parse_threshold(value: str | None, name: str) -> float | None:
    """A cost above which the user confirms: unset gives 1 USD, `none` never asks, else zero or more USD."""
    if value is None or not value.strip():
        return 1.0
    if value.strip().lower() == "none":
        return None
    try:
        return parse_budget(value, name)
    except InvalidSetting:
        raise InvalidSetting(f"{name} must be an amount in USD, like 2 or 0.50, or `none` (never ask).") from None


def default_home() -> Path:
    """A git-ignored folder under data/ in a checkout, else a folder in the user's home."""
    if (DATA_DIR / "presets.json").exists() and os.access(DATA_DIR, os.W_OK):
        return DATA_DIR / "home"
    return Path.home() / ".character-studio"


def _env(name: str) -> dict[str, str]:
    """Field metadata: the environment variable a setting comes from (tests/test_settings_documented.py)."""
    return {"env": name}


def number(env: Mapping[str, str], name: str, default: float, kind: type = int, minimum: float = 0,
           maximum: float | None = None):
    """A numeric setting: unset or empty gives `default`; anything else must be a `kind` of at least
    `minimum` (and at most `maximum`), or InvalidSetting names the variable."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise InvalidSetting(f"{name} must be {what} (it is {raw[:40]!r}).") from None
    if value != value or value < minimum:  # NaN, or too small
        raise InvalidSetting(f"{name} must be at least {minimum:g} (it is {raw[:40]!r}).")
    if maximum is not None and value > maximum:
        raise InvalidSetting(f"{name} must be at most {maximum:g} (it is {raw[:40]!r}).")
    return value


def flag(env: Mapping[str, str], name: str) -> bool:
    """A switch: set and not `0` is on."""
    return (env.get(name) or "").strip() not in ("", "0")


@dataclass(frozen=True)
class StorageSettings:
    """The image store's settings: S3 credentials, endpoint and tunings (docs/storage.md)."""

    access_key_id: str | None = field(default=None, metadata=_env("AWS_ACCESS_KEY_ID"))
    secret_access_key: str | None = field(default=None, repr=False, metadata=_env("AWS_SECRET_ACCESS_KEY"))
    session_token: str | None = field(default=None, repr=False, metadata=_env("AWS_SESSION_TOKEN"))
    profile: str | None = field(default=None, metadata=_env("AWS_PROFILE"))
    region: str | None = field(default=None, metadata=_env("AWS_DEFAULT_REGION"))  # or AWS_REGION
    endpoint_url: str | None = field(default=None, metadata=_env("AWS_ENDPOINT_URL"))  # or _S3 / STUDIO_S3_ENDPOINT_URL
    addressing_style: str | None = field(default=None, metadata=_env("STUDIO_S3_ADDRESSING_STYLE"))
    connect_timeout: float = field(default=5.0, metadata=_env("STUDIO_STORAGE_CONNECT_TIMEOUT"))
    read_timeout: float = field(default=30.0, metadata=_env("STUDIO_STORAGE_READ_TIMEOUT"))
    write_attempts: int = field(default=4, metadata=_env("STUDIO_STORAGE_WRITE_ATTEMPTS"))
    retry_base: float = field(default=0.25, metadata=_env("STUDIO_STORAGE_RETRY_BASE"))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "StorageSettings":
        """From the environment as loaded (secrets already stripped, see `load_secrets`)."""
        return cls(
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
            profile=env.get("AWS_PROFILE") or None,
            region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
            endpoint_url=(env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
                          or env.get("STUDIO_S3_ENDPOINT_URL") or None),
            addressing_style=env.get("STUDIO_S3_ADDRESSING_STYLE") or None,
            connect_timeout=number(env, "STUDIO_STORAGE_CONNECT_TIMEOUT", 5.0, float),
            read_timeout=number(env, "STUDIO_STORAGE_READ_TIMEOUT", 30.0, float),
            write_attempts=number(env, "STUDIO_STORAGE_WRITE_ATTEMPTS", 4, int, 1),
            retry_base=number(env, "STUDIO_STORAGE_RETRY_BASE", 0.25, float),
        )


@dataclass(frozen=True)
class Settings:
    """Everything the core reads from outside. Build with `Settings.from_env()`."""

    home: Path = field(metadata=_env("STUDIO_HOME"))
    db_path: Path = field(metadata=_env("STUDIO_DB"))
    storage_url: str = field(metadata=_env("STUDIO_STORAGE_URL"))
    # The environment as loaded (provider keys stripped and registered for redaction): each provider
    # is handed only its declared part of it (core.plugins.scoped_env).
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False, metadata={"env": None})
    load_plugins: str | None = field(default=None, metadata=_env("STUDIO_LOAD_PLUGINS"))
    max_attempts: int = field(default=3, metadata=_env("STUDIO_MAX_ATTEMPTS"))
    # seconds a job's transient provider errors are retried (docs/plugins.md)
    job_deadline: int = field(default=6 * 3600, metadata=_env("STUDIO_JOB_DEADLINE"))
    start_runner: bool = field(default=True, metadata={"env": None})  # a caller's choice (the CLI runs none)
    local_user: str = field(default="local", metadata=_env("STUDIO_LOCAL_USER"))
    admins: frozenset[str] = field(default=frozenset(), metadata=_env("STUDIO_ADMINS"))
    # the user the `studio` command acts as (None: the local user); an admin only if STUDIO_ADMINS names it
    cli_user: str | None = field(default=None, metadata=_env("STUDIO_CLI_USER"))
    sign_expiry: int = field(default=3600, metadata=_env("STUDIO_SIGN_EXPIRY"))
    gc_grace_seconds: int = field(default=86400, metadata=_env("STUDIO_GC_GRACE_SECONDS"))
    upload_max_age: int = field(default=7 * 86400, metadata=_env("STUDIO_UPLOAD_MAX_AGE"))
    db_threads: int = field(default=1, metadata=_env("STUDIO_DB_THREADS"))
    # PostgreSQL, shared by several servers; None: the DuckDB file `db_path`
    database_url: str | None = field(default=None, metadata=_env("STUDIO_DATABASE_URL"))
    # PostgreSQL: how long a server's claim on a job lasts unless renewed
    lease_seconds: float = field(default=30.0, metadata=_env("STUDIO_LEASE_SECONDS"))
    # PostgreSQL: provider calls one server makes at once (0: only the providers' limits)
    runner_slots: int = field(default=0, metadata=_env("STUDIO_RUNNER_SLOTS"))
    storage: StorageSettings = field(default_factory=StorageSettings, metadata={"env": None})  # its own fields say
    debug: bool = field(default=False, metadata=_env("STUDIO_DEBUG"))
    # Tunings every provider gets (through `secrets`, as declared); checked here, None: the provider's own
    poll_interval: float | None = field(default=None, metadata=_env("STUDIO_POLL_INTERVAL"))
    provider_timeout: float | None = field(default=None, metadata=_env("STUDIO_PROVIDER_TIMEOUT"))
    download_deadline: float | None = field(default=None, metadata=_env("STUDIO_DOWNLOAD_DEADLINE"))
    # USD each user may spend per calendar month (UTC); None: unlimited
    default_budget: float | None = field(default=None, metadata=_env("STUDIO_DEFAULT_BUDGET"))
    # USD: a comparison whose estimated cost is above this asks for a confirmation first; None: never asks
    compare_confirm_usd: float | None = field(default=1.0, metadata=_env("STUDIO_COMPARE_CONFIRM_USD"))
    assist_rate: int = field(default=30, metadata=_env("STUDIO_ASSIST_RATE"))  # AI assist calls per user per minute (0: no limit)
    # seconds one AI assist call may take, streamed or not
    assist_timeout: float = field(default=60.0, metadata=_env("STUDIO_ASSIST_TIMEOUT"))
    auth: AuthMode = field(default=AuthMode.LOCAL, metadata=_env("STUDIO_AUTH"))  # how users sign in (core/auth.py)
    # proxy mode: the header that names the user, and where that header is believed
    auth_proxy_header: str = field(default=DEFAULT_PROXY_HEADER, metadata=_env("STUDIO_AUTH_PROXY_HEADER"))
    auth_trusted_proxies: tuple[Network, ...] = field(default=LOOPBACK, metadata=_env("STUDIO_AUTH_TRUSTED_PROXIES"))

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
            max_attempts=number(env, "STUDIO_MAX_ATTEMPTS", 3, int, 1),
            job_deadline=number(env, "STUDIO_JOB_DEADLINE", 6 * 3600, int, 1),
            local_user=env.get("STUDIO_LOCAL_USER", "local"),
            admins=frozenset(a.strip().lower() for a in env.get("STUDIO_ADMINS", "").split(",") if a.strip()),
            cli_user=env.get("STUDIO_CLI_USER", "").strip() or None,
            sign_expiry=number(env, "STUDIO_SIGN_EXPIRY", 3600),
            gc_grace_seconds=number(env, "STUDIO_GC_GRACE_SECONDS", 86400),
            upload_max_age=number(env, "STUDIO_UPLOAD_MAX_AGE", 7 * 86400),
            db_threads=number(env, "STUDIO_DB_THREADS", 1, int, 1),
            database_url=database_url,
            lease_seconds=number(env, "STUDIO_LEASE_SECONDS", 30.0, float, 1),
            runner_slots=number(env, "STUDIO_RUNNER_SLOTS", 0),
            storage=StorageSettings.from_env(merged),
            debug=flag(env, "STUDIO_DEBUG"),
            poll_interval=number(merged, "STUDIO_POLL_INTERVAL", None, float),
            provider_timeout=number(merged, "STUDIO_PROVIDER_TIMEOUT", None, float),
            download_deadline=number(merged, "STUDIO_DOWNLOAD_DEADLINE", None, float),
            default_budget=parse_budget(env.get("STUDIO_DEFAULT_BUDGET", ""), "STUDIO_DEFAULT_BUDGET"),
            compare_confirm_usd=parse_threshold(env.get("STUDIO_COMPARE_CONFIRM_USD"), "STUDIO_COMPARE_CONFIRM_USD"),
            assist_rate=number(env, "STUDIO_ASSIST_RATE", 30),
            assist_timeout=number(env, "STUDIO_ASSIST_TIMEOUT", 60.0, float, 0.1),
            auth=parse_mode(env.get("STUDIO_AUTH")),
            auth_proxy_header=parse_proxy_header(env.get("STUDIO_AUTH_PROXY_HEADER")),
            auth_trusted_proxies=parse_networks(env.get("STUDIO_AUTH_TRUSTED_PROXIES")),
        )
        values.update(overrides)
        return cls(**values)

    def secret(self, name: str) -> str | None:
        """A secret (provider key) by its usual environment name; empty counts as absent."""
        value = self.secrets.get(name)
        return value or None

    def is_admin(self, user_id: str, email: str | None = None) -> bool:
        """Whether the deployment names this user an admin: the local user of a `local` install, or an id
        or email listed in STUDIO_ADMINS (compared without case). Nothing a caller says changes this; with
        sign-in (oidc, proxy) the local user is nobody's account and no admin."""
        named = {user_id.lower(), (email or "").lower()} - {""}
        return (self.auth is AuthMode.LOCAL and user_id == self.local_user) or bool(named & self.admins)

    @property
    def spool_dir(self) -> Path:
        """Local folder that holds paid-for image bytes until they are in the image store."""
        return self.home / "spool"
