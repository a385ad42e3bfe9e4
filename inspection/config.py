"""One Settings object, built at the entry point and passed down (nothing reads env elsewhere)."""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
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
    host: str = "127.0.0.1"
    port: int = 7860
    # Demo mode seeds demo users and images; never on in production.
    demo: bool = False

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'inspection.db').as_posix()}"
        return self

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"
