"""Ordered schema migrations: (version, name, statements). Append only; never edit a shipped one.

One text serves DuckDB and PostgreSQL (`core.data.dialect` adapts type names). DuckDB shapes this
schema: no foreign keys on rows that get updated, no LIST columns (lists and objects are JSON text),
indexes only on columns that never change.
"""
from __future__ import annotations


class ServerOnly(str):
    """A statement only the server database (PostgreSQL) runs: an index on columns that change, which
    DuckDB's indexes do not allow (and a one-process DuckDB file does not need)."""

INITIAL = [
    """CREATE TABLE users (
        id VARCHAR PRIMARY KEY,
        display_name VARCHAR NOT NULL,
        email VARCHAR,
        is_admin BOOLEAN NOT NULL DEFAULT FALSE,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE characters (
        id VARCHAR PRIMARY KEY,
        owner VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        description VARCHAR NOT NULL DEFAULT '',
        gender VARCHAR NOT NULL DEFAULT 'unspecified',
        content_rating VARCHAR NOT NULL DEFAULT 'sfw',
        is_public BOOLEAN NOT NULL DEFAULT FALSE,
        traits VARCHAR,
        persona VARCHAR,
        appearance_tags VARCHAR NOT NULL DEFAULT '[]',
        clothing_tags VARCHAR NOT NULL DEFAULT '[]',
        voice_tone VARCHAR NOT NULL DEFAULT 'warm',
        mood VARCHAR NOT NULL DEFAULT 'friendly',
        first_message VARCHAR,
        alternate_greetings VARCHAR NOT NULL DEFAULT '[]',
        forbidden_phrases VARCHAR NOT NULL DEFAULT '[]',
        voice_examples VARCHAR NOT NULL DEFAULT '[]',
        system_prompt VARCHAR,
        default_presets VARCHAR NOT NULL DEFAULT '{}',
        reference_image_key VARCHAR,
        reference_image_hash VARCHAR,
        primary_portrait_id VARCHAR,
        template_id VARCHAR,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE character_portraits (
        id VARCHAR PRIMARY KEY,
        character_id VARCHAR NOT NULL,
        owner VARCHAR NOT NULL,
        image_key VARCHAR NOT NULL,
        thumbnail_key VARCHAR NOT NULL,
        prompt VARCHAR NOT NULL,
        recipe VARCHAR NOT NULL,
        job_id VARCHAR NOT NULL UNIQUE,
        sort_order INTEGER NOT NULL DEFAULT 0,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE character_scenes (
        id VARCHAR PRIMARY KEY,
        character_id VARCHAR NOT NULL,
        owner VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        description VARCHAR NOT NULL DEFAULT '',
        prompt VARCHAR NOT NULL DEFAULT '',
        type VARCHAR NOT NULL DEFAULT 'custom',
        starters VARCHAR NOT NULL DEFAULT '[]',
        system_prompt VARCHAR,
        priority INTEGER NOT NULL DEFAULT 0,
        image_id VARCHAR,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE scene_images (
        id VARCHAR PRIMARY KEY,
        scene_id VARCHAR NOT NULL,
        character_id VARCHAR NOT NULL,
        owner VARCHAR NOT NULL,
        image_key VARCHAR NOT NULL,
        thumbnail_key VARCHAR NOT NULL,
        prompt VARCHAR NOT NULL,
        recipe VARCHAR NOT NULL,
        job_id VARCHAR NOT NULL UNIQUE,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE character_templates (
        id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        summary VARCHAR NOT NULL DEFAULT '',
        character VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE api_providers (
        id VARCHAR PRIMARY KEY,
        display_name VARCHAR NOT NULL,
        concurrency_limit INTEGER NOT NULL,
        is_enabled BOOLEAN NOT NULL DEFAULT TRUE,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE api_models (
        id VARCHAR PRIMARY KEY,
        provider_id VARCHAR NOT NULL,
        model_key VARCHAR NOT NULL,
        display_name VARCHAR NOT NULL,
        modality VARCHAR NOT NULL,
        capabilities VARCHAR NOT NULL DEFAULT '{}',
        is_active BOOLEAN NOT NULL DEFAULT TRUE,
        priority INTEGER NOT NULL DEFAULT 0,
        input_defaults VARCHAR NOT NULL DEFAULT '{}',
        notes VARCHAR NOT NULL DEFAULT '',
        edited BOOLEAN NOT NULL DEFAULT FALSE,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        UNIQUE (provider_id, model_key)
    )""",
    "CREATE SEQUENCE job_seq START 1",
    """CREATE TABLE jobs (
        id VARCHAR PRIMARY KEY,
        seq BIGINT NOT NULL,
        kind VARCHAR NOT NULL,
        owner VARCHAR NOT NULL,
        character_id VARCHAR NOT NULL,
        scene_id VARCHAR,
        batch_id VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        percent DOUBLE,
        queue_position INTEGER,
        provider_id VARCHAR NOT NULL,
        model_id VARCHAR NOT NULL,
        model_key VARCHAR NOT NULL,
        request VARCHAR NOT NULL,
        provider_request_id VARCHAR,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        next_attempt_at TIMESTAMP,
        last_error VARCHAR,
        result_id VARCHAR,
        created_at TIMESTAMP NOT NULL,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        provider_ms DOUBLE,
        overhead_ms DOUBLE
    )""",
    """CREATE TABLE uploads (
        key VARCHAR PRIMARY KEY,
        owner VARCHAR NOT NULL,
        sha256 VARCHAR NOT NULL,
        content_type VARCHAR NOT NULL,
        size BIGINT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
]

# Several servers on one PostgreSQL queue: a claimed job is leased to one server until it expires
# (renewed while the server works on it); a paid-for image waits in the shared database, not on
# one server's disk (see core/engine/spool.py). Unused with DuckDB.
SHARED_QUEUE = [
    "ALTER TABLE jobs ADD COLUMN lease_owner VARCHAR",
    "ALTER TABLE jobs ADD COLUMN lease_expires_at TIMESTAMP",
    """CREATE TABLE job_spool (
        job_id VARCHAR PRIMARY KEY,
        data BLOB NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
]

# AI assist (core/assist/): one row per text-model call (its cost, for budgets and the per-user rate),
# and the prompt-enhancement templates (seeded from data/prompt_templates.json, admins add and edit).
ASSIST = [
    """CREATE TABLE assist_calls (
        id VARCHAR PRIMARY KEY,
        owner VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        subject VARCHAR NOT NULL,
        character_id VARCHAR,
        model_id VARCHAR NOT NULL,
        provider_id VARCHAR NOT NULL,
        model_key VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        cost DOUBLE,
        error VARCHAR,
        created_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX assist_calls_owner ON assist_calls (owner, created_at)",
    """CREATE TABLE prompt_templates (
        id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        content_rating VARCHAR NOT NULL,
        instruction VARCHAR NOT NULL,
        style VARCHAR NOT NULL DEFAULT '',
        builtin BOOLEAN NOT NULL DEFAULT FALSE,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )""",
]

# The Compare grid (core/compare/): a comparison's axes, and one result row per finished cell (its
# job is in `jobs`, batch_id = the comparison's id); a kept cell is copied into character_portraits.
COMPARISONS = [
    """CREATE TABLE comparisons (
        id VARCHAR PRIMARY KEY,
        owner VARCHAR NOT NULL,
        character_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        spec VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX comparisons_character ON comparisons (character_id)",
    """CREATE TABLE comparison_cells (
        id VARCHAR PRIMARY KEY,
        comparison_id VARCHAR NOT NULL,
        character_id VARCHAR NOT NULL,
        owner VARCHAR NOT NULL,
        image_key VARCHAR NOT NULL,
        thumbnail_key VARCHAR NOT NULL,
        recipe VARCHAR NOT NULL,
        job_id VARCHAR NOT NULL UNIQUE,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX comparison_cells_comparison ON comparison_cells (comparison_id)",
]

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "initial schema", INITIAL),
    (2, "retired models and job costs", [
        "ALTER TABLE api_models ADD COLUMN retired_at TIMESTAMP",  # set when the provider says the model is gone
        "ALTER TABLE api_models ADD COLUMN retired_reason VARCHAR",
        "ALTER TABLE jobs ADD COLUMN cost DOUBLE",  # USD, as the provider reported it (or the catalog price)
    ]),
    (3, "job leases and a shared spool", SHARED_QUEUE),
    (4, "plugin catalog sync and progress messages", [
        # JSON list of the fields an admin set (they win over a plugin's defaults); NULL: rows from
        # before, where `edited` meant every field
        "ALTER TABLE api_models ADD COLUMN admin_fields VARCHAR",
        # TRUE: seeded from a plugin's default_models; FALSE: added by an admin; NULL: not known
        "ALTER TABLE api_models ADD COLUMN declared BOOLEAN",
        "ALTER TABLE api_models ADD COLUMN retired_by VARCHAR",  # 'provider' (it answered gone) or 'plugin' (undeclared)
        "ALTER TABLE jobs ADD COLUMN progress_message VARCHAR",  # the provider's last Progress.message
    ]),
    (5, "portrait visibility and monthly budgets", [
        # A portrait without a row is as its character; a row is its owner's choice (a table of its own:
        # the result rows the runner inserts stay as they are)
        """CREATE TABLE portrait_visibility (
            portrait_id VARCHAR PRIMARY KEY,
            is_public BOOLEAN NOT NULL,
            updated_at TIMESTAMP NOT NULL
        )""",
        # A row overrides STUDIO_DEFAULT_BUDGET for one user: monthly_usd NULL means unlimited
        """CREATE TABLE user_budgets (
            user_id VARCHAR PRIMARY KEY,
            monthly_usd DOUBLE,
            updated_by VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL
        )""",
    ]),
    (6, "assist calls and prompt templates", ASSIST),
    (7, "an index of unfinished jobs", [
        # Claims, queue positions and the polled active jobs read the unfinished rows only; without it
        # each scans every job ever run.
        ServerOnly("CREATE INDEX jobs_unfinished ON jobs (status, provider_id, seq) "
                   "WHERE status IN ('queued', 'running', 'storing')"),
    ]),
    (8, "form drafts", [
        # One row per field of a user's unsubmitted form (core/drafts.py); value is JSON text
        """CREATE TABLE drafts (
            owner VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            field VARCHAR NOT NULL,
            value VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (owner, kind, field)
        )""",
    ]),
    (9, "comparisons and their cells", COMPARISONS),
]
