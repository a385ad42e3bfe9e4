"""The context every use case runs against: settings, database engine, models, clock."""

from __future__ import annotations

import threading
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
    """Settings + database engine + model provider + clock: what every use case runs against."""

    settings: Settings
    engine: Engine
    scorer_factory: ScorerFactory
    clock: Clock = _utcnow
    _scorers: dict[str, Scorer] = field(default_factory=dict, repr=False)
    _load_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="scorer"), repr=False
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
        return cls(
            settings=settings,
            engine=engine,
            scorer_factory=scorer_factory or default_scorer_factory(settings),
            clock=clock or _utcnow,
        )

    def scorer(self, name: str) -> Scorer:
        """The loaded model `name`, loaded once (models stay loaded, so switching back is instant)."""
        with self._load_lock:
            if name not in self._scorers:
                self._scorers[name] = self.scorer_factory(name)
            return self._scorers[name]

    def resolve(self, relative: str) -> Path:
        """Absolute path of a stored file (rows keep paths relative to data_dir)."""
        return self.settings.data_dir / relative

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


