"""One Settings object, built at the entry point and passed down (nothing reads env elsewhere)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INSPECTION_", extra="ignore")

    data_dir: Path = Path("./data")
    models_dir: Path = Path("./models")
    # Empty means: SQLite file `inspection.db` inside data_dir (filled in by the validator below).
    database_url: str = ""
    # Which artifact under models_dir serves when the registry has no production model yet.
    default_model: str = "baseline"
    # Uploads above this are refused with 413 before decoding (bytes).
    max_upload_bytes: int = 25 * 1024 * 1024
    # Decoded images above this pixel count are refused (decompression-bomb guard).
    max_pixels: int = 50_000_000
    # Review-queue lease: a claimed item returns to the queue after this many seconds.
    lease_seconds: int = 300
    # An inspector may undo their own last label within this window (seconds).
    undo_window_seconds: int = 120
    # Inference threads for torch / ONNX Runtime (the CI machine has 2 cores).
    threads: int = 2
    # A model call that takes longer is abandoned and the item goes to a person (fail-safe).
    score_timeout_seconds: float = 30.0
    # Micro-batching of concurrent requests' forward passes (services.batcher): up to this many items,
    # waiting at most score_batch_wait_ms (milliseconds) after the first. 1 = off: on 2 cores batching
    # gained nothing measurable (README, issue 13); more cores or a GPU may want 4-16.
    score_batch_size: int = Field(default=1, ge=1, le=64)
    score_batch_wait_ms: float = Field(default=2.0, ge=0.0, le=1000.0)
    host: str = "127.0.0.1"
    port: int = 7860
    # With `serve --workers N` the web UI runs in one extra process on this port (default port + 1):
    # Gradio keeps its event queue and state per process, so one browser must always reach the same
    # one. The workers answer the UI's pages with a redirect there.
    ui_port: int | None = Field(default=None, ge=1, le=65535)
    # A browser session ends after this many minutes without a request (and 12 h after login).
    session_idle_minutes: int = 60
    # Behind a TLS-terminating proxy: `X-Forwarded-Proto: https` marks session cookies Secure (a
    # request over https always does).
    behind_proxy: bool = True
    # Origins besides the server's own that may send state-changing browser requests (CSRF check),
    # comma-separated, e.g. "https://mes.example.com".
    allowed_origins: str = ""
    # Demo mode seeds demo users and images; never on in production.
    demo: bool = False
    # /docs, /redoc, /openapi.json (and the Gradio apps' openapi.json): off in production, on for --demo.
    expose_docs: bool = False
    # When set, /metrics (and /healthz's details) require `Authorization: Bearer <token>`.
    metrics_token: SecretStr | None = None
    # Without a token /metrics answers 404 unless this is on (a scraper on a private network; --demo).
    expose_metrics: bool = False
    # Full-resolution decodes in flight at once, and their pixels together (megapixels): a burst of
    # small files that decode to huge images must not exhaust memory. Over either: 503 + Retry-After.
    max_concurrent_decodes: int = Field(default=4, ge=1)
    decode_budget_megapixels: float = Field(default=100.0, gt=0)
    # How long an upload waits for a decode slot before it is answered 503.
    decode_wait_seconds: float = Field(default=2.0, ge=0)
    # `serve` when the database is down at start: tries this many times (back-off 1, 2, 4 … 30 s), then exits 1.
    startup_db_attempts: int = Field(default=8, ge=1)
    # Monitoring (issue 10): one sample per inspection, drift checks and alarms. Off skips even the
    # sample insert (for benchmarks); the API process evaluates stations with new samples this often.
    monitoring: bool = True
    monitor_interval_seconds: float = Field(default=5.0, gt=0)
    # Alarms firing and clearing are POSTed here as JSON (retried with back-off, never blocking ingest).
    alarm_webhook_url: str = ""
    # Quality control of the inspectors (issue 11), defaults for stations without their own rates
    # (`inspection qc set`): the share of an inspector's claims that get a planted gold item instead, and
    # the share of items labelled by two inspectors independently. 0 turns each off.
    qc_gold_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    qc_double_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # Where images and heatmaps live (issue 13, services/image_store.py): empty = data_dir as always;
    # `file:///path` another (shared) folder; `s3://bucket/prefix` an S3-compatible object store that
    # several machines share (credentials from the standard AWS_* variables).
    image_store: str = ""
    # The S3-compatible server (MinIO, Ceph …); empty = AWS itself (or the AWS_ENDPOINT_URL variable).
    image_store_endpoint_url: str = ""
    # Local copies of object-store images for readers that need a file (Gradio, downloads, training),
    # least recently used out first beyond this size. Empty dir = data_dir/image-cache.
    image_cache_dir: Path | None = None
    image_cache_mb: int = Field(default=2048, ge=1)

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'inspection.db').as_posix()}"
        return self

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"
