"""Settings, read once from ``CLOSELOOP_*`` environment variables (and ``.env``)."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of a deployment. Safe defaults give the embedded mode: SQLite and a file queue."""

    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_", env_file=".env", extra="ignore")

    var_dir: Path = Field(default=Path("./var"), description="Where the embedded database, queue and secret live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<var_dir>/closeloop.db"
    )
    database_app_role: str = Field(
        default="closeloop_app",
        description="PostgreSQL role the app switches to when connected as a superuser, so row-level security applies",
    )
    redis_url: str | None = Field(default=None, description="Redis URL for the shared task queue; unset = SQLite queue")
    queue_name: str = Field(
        default="closeloop", description="Name of the task queue (several installations can share one Redis)"
    )
    secret_key: str | None = Field(
        default=None, description="Signs session cookies; generated under var_dir when unset"
    )
    llm_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    https_only: bool = Field(default=False, description="Mark cookies Secure (set behind TLS)")
    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = 50 * 1_048_576
    token_cache_seconds: float = 10.0
    idempotency_hours: int = 24
    default_locale: str = "zh_CN"
    quality_title_days: int = Field(default=180, description="A contact title older than this many days is stale")
    quality_stage_days: int = Field(
        default=30, description="An open opportunity with no stage move or activity for this many days is stale"
    )
    quality_lead_hours: int = Field(default=24, description="A lead unassigned for longer than this is a defect")
    quality_overlap_seconds: int = Field(
        default=600,
        description="An incremental data-quality scan re-checks records changed this long before the last "
        "watermark too (writes that committed late)",
    )

    freshness_lookback_days: int = Field(
        default=365,
        description="Freshness monitoring learns each field's and feed's rhythm from this many days of history",
    )
    freshness_min_active_weeks: int = Field(
        default=6, description="A field or feed changed in fewer distinct weeks than this has no rhythm to watch"
    )
    freshness_factor: float = Field(
        default=4.0, description="Alert when a feed is silent for more than this many times its usual gap"
    )
    freshness_min_silent_days: int = Field(
        default=14, description="Never alert on a silence shorter than this many days, whatever the rhythm"
    )

    storage_dir: Path | None = Field(
        default=None,
        description="Where uploaded files (visit photos) are kept, per organization; default <var_dir>/storage",
    )
    photo_max_bytes: int = Field(default=8 * 1_048_576, description="The largest visit photo accepted")
    business_timezone: str = Field(
        default="Asia/Shanghai", description="The time zone whose days and weeks visit plans and reports follow"
    )
    far_check_in_metres: int = Field(
        default=1000, description="A visit check-in farther than this from the account's coordinates is flagged"
    )

    @property
    def effective_storage_dir(self) -> Path:
        return self.storage_dir if self.storage_dir is not None else self.var_dir / "storage"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'closeloop.db').as_posix()}"

    @cached_property
    def effective_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        self.var_dir.mkdir(parents=True, exist_ok=True)
        path = self.var_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def protect_var_dir(self) -> None:
        """Keep the product's own data to the account that runs it: from now on this process
        creates files owner-only (umask 077: the SQLite database and its journal, the queue, staged
        imports, visit photos), and the var directory — with the storage directory, when it lies
        elsewhere — and whatever an earlier version left readable in them are made owner-only
        (directories 700, files 600). A tree already owner-only is not walked again.
        Called by ``closeloop migrate``, ``serve``, ``worker`` and ``demo``, and by the app at start-up."""
        os.umask(0o077)
        roots = [self.var_dir, self.effective_storage_dir]
        self.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for root in dict.fromkeys(roots):
            if root.is_dir():
                _owner_only(root)


log = logging.getLogger(__name__)


def _owner_only(directory: Path) -> None:
    """``directory`` 700 and everything under it owner-only, walking only directories that were
    open to others (a tree fixed once is skipped after)."""
    pending = [directory]
    while pending:
        current = pending.pop()
        try:
            mode = current.stat().st_mode
            if mode & 0o077:
                current.chmod(0o700)
            entries = list(os.scandir(current))
        except PermissionError:
            log.warning("%s is not ours to make owner-only; left as it is", current)
            continue
        for entry in entries:
            try:
                if entry.is_symlink():
                    continue
                entry_mode = entry.stat().st_mode
                if stat.S_ISDIR(entry_mode):
                    if entry_mode & 0o077 or current == directory:
                        pending.append(Path(entry.path))
                elif entry_mode & 0o077:
                    os.chmod(entry.path, 0o600)
            except PermissionError:  # one file not ours (left by another account): the rest still are
                log.warning("%s is not ours to make owner-only; left as it is", entry.path)


settings = Settings()
