"""The context every use case runs against: settings, database engine, models, clock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from inspection import store
from inspection.config import Settings
from inspection.core.scoring import Scorer
from inspection.services.image_store import ImageStore, open_image_store
from inspection.services.limits import DecodeLimiter
from inspection.store.db import database_problem, safe_url

log = logging.getLogger("inspection")

ScorerFactory = Callable[[str], Scorer]  # model name under models_dir -> a loaded Scorer
Clock = Callable[[], datetime]


def default_scorer_factory(settings: Settings) -> ScorerFactory:
    """Load real model artifacts from settings.models_dir (torch imported only when first used)."""

    def load(name: str) -> Scorer:
        from inspection.vision.predictor import load_predictor

        return load_predictor(settings.models_dir / name, threads=settings.threads)

    return load


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Pipeline:
    """Settings + database engine + model provider + clock + image store: what every use case runs against."""

    settings: Settings
    engine: Engine
    scorer_factory: ScorerFactory
    clock: Clock = _utcnow
    _scorers: dict[str, Scorer] = field(default_factory=dict, repr=False)
    _load_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="scorer"), repr=False
    )
    decodes: DecodeLimiter = field(init=False, repr=False)
    # Images and heatmaps (INSPECTION_IMAGE_STORE): a local folder or an object store.
    images: ImageStore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.images = open_image_store(s)
        self.decodes = DecodeLimiter(
            slots=s.max_concurrent_decodes,
            budget_pixels=int(s.decode_budget_megapixels * 1e6),
            wait_seconds=s.decode_wait_seconds,
        )

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        scorer_factory: ScorerFactory | None = None,
        clock: Clock | None = None,
        upgrade: bool = True,
    ) -> Pipeline:
        """Build the context at an entry point; upgrades the schema to head unless told not to."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = store.make_engine(settings.database_url)
        if upgrade:
            store.upgrade_database(engine)
        pipeline = cls(
            settings=settings,
            engine=engine,
            scorer_factory=scorer_factory or default_scorer_factory(settings),
            clock=clock or _utcnow,
        )
        pipeline.images.sweep()
        return pipeline

    def scorer(self, name: str) -> Scorer:
        """The loaded model `name`, loaded once (models stay loaded, so switching back is instant)."""
        with self._load_lock:
            if name not in self._scorers:
                self._scorers[name] = self.scorer_factory(name)
            return self._scorers[name]

    def resolve(self, relative: str) -> Path:
        """A local file with a stored image's bytes (rows keep store keys, e.g. `images/ab/<sha>.png`,
        which are paths relative to data_dir for the default store). A missing image gives a path that
        does not exist."""
        return self.images.local_path(relative)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[store.Session]:
        with store.write_session(self.engine) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[store.Session]:
        with store.read_session(self.engine) as session:
            yield session


def wait_for_database(
    settings: Settings, *, say: Callable[[str], None], sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Try to connect up to settings.startup_db_attempts times with back-off (1, 2, 4 … 30 s), saying
    one line per failed try. False when the database never answered."""
    delay = 1.0
    for attempt in range(1, settings.startup_db_attempts + 1):
        problem = database_problem(settings.database_url)
        if problem is None:
            return True
        where = safe_url(settings.database_url)
        if attempt == settings.startup_db_attempts:
            say(f"database unavailable at {where}: {problem}; giving up after {attempt} tries")
            return False
        tries = settings.startup_db_attempts
        say(f"database unavailable at {where}: {problem}; retry {attempt + 1}/{tries} in {delay:g} s")
        sleep(delay)
        delay = min(delay * 2, 30.0)
    return False
