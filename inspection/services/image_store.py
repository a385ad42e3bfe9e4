"""Where images and heatmaps live: one interface, a local folder (default) or an S3-compatible object store.

Keys are the paths the rows keep, relative to the store's root (`images/<aa>/<sha256>.<ext>`,
`images/<aa>/<sha256>.<model>.heatmap.png`): content-addressed, so a key's bytes never change and a
local copy of an object can never go stale (a heatmap is rewritten only with the same model's output
for the same image). `INSPECTION_IMAGE_STORE` picks the store:
- empty: the folder data_dir, exactly as before (existing data keeps working);
- `file:///path`: another folder (e.g. a shared mount), same layout under it;
- `s3://bucket/prefix`: an object store through fsspec/s3fs; credentials, region and endpoint come from
  the standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
  AWS_ENDPOINT_URL) or INSPECTION_IMAGE_STORE_ENDPOINT_URL. Readers that need a file (Gradio,
  FileResponse, training links) get a copy in a bounded local cache.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import fsspec

from inspection.config import Settings

log = logging.getLogger("inspection")
# A `.tmp-*` file older than this is left over from a crash. Younger ones may belong to another server
# process writing right now (uvicorn --workers N share the folder), so they are kept.
STALE_TMP_SECONDS = 600.0
# A cached copy used this recently is never evicted: a reader may hold its path and not have opened it
# yet (FileResponse opens the file after the handler returns).
CACHE_KEEP_SECONDS = 60.0
# Eviction goes down to this share of the bound, so a full cache is not scanned on every miss.
CACHE_LOW_WATER = 0.8


class ImageStore(Protocol):
    """Stored image bytes by key. put is durable when it returns (an acknowledged decision's image is
    on disk or in the bucket)."""

    @property
    def local_root(self) -> Path:
        """The folder every local_path lies in (callers check a resolved path stays inside it)."""
        ...

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None:
        """Stored size in bytes, None when the key is absent."""
        ...

    def local_path(self, key: str) -> Path:
        """A local file with the key's bytes; a path that does not exist when the key is absent, so
        readers behave as they always did with a missing file."""
        ...

    def sweep(self) -> int:
        """Remove what crashed writes left behind; the count removed."""
        ...


def check_key(key: str) -> str:
    """A key is a relative POSIX path without `.`/`..` parts: it can never name anything outside the root."""
    # split, not PurePosixPath.parts: that silently drops `.` and empty parts instead of refusing them
    if not key or "\\" in key or any(p in ("", ".", "..") for p in key.split("/")):
        raise ValueError(f"not a valid image key: {key!r}")
    return key


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file + fsync + rename so a crash never leaves a half file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_tmp_files(folder: Path, *, older_than: float = STALE_TMP_SECONDS) -> int:
    """Delete `.tmp-*` files a crash left under folder (atomic writes that never got renamed)."""
    if not folder.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for tmp in folder.rglob(".tmp-*"):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:  # another process cleaned it first
            continue
    if removed:
        log.warning("removed %d unfinished file(s) (.tmp-*) left by an earlier crash under %s", removed, folder)
    return removed


class LocalImageStore:
    """A folder: the layout and the atomic, fsynced writes the service always had."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"LocalImageStore({str(self.root)!r})"

    @property
    def local_root(self) -> Path:
        return self.root

    def put(self, key: str, data: bytes) -> None:
        write_atomic(self.root / check_key(key), data)

    def get(self, key: str) -> bytes:
        return self.local_path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.local_path(key).is_file()

    def size(self, key: str) -> int | None:
        try:
            return self.local_path(key).stat().st_size
        except FileNotFoundError:
            return None

    def local_path(self, key: str) -> Path:
        return self.root / check_key(key)

    def sweep(self) -> int:
        return remove_stale_tmp_files(self.root / "images")


class LocalCache:
    """Local copies of remote objects, bounded in bytes; least recently used out first. Never stale:
    keys are content-addressed. Shared safely by processes on one machine (atomic renames; each
    process evicts from what is on disk, not from its own bookkeeping)."""

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)
        self._bytes = sum(size for _, size, _ in self._files())

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def hit(self, key: str) -> Path | None:
        path = self.path(key)
        try:
            os.utime(path)  # mtime = last use: what eviction orders by (atime is often off: noatime)
        except FileNotFoundError:
            return None
        return path

    def add(self, key: str, data: bytes) -> Path:
        path = self.path(key)
        write_atomic(path, data)  # readers in other threads/processes never see half a copy
        with self._lock:
            self._bytes += len(data)
            if self._bytes > self.max_bytes:
                self._evict()
        return path

    def _files(self) -> list[tuple[float, int, Path]]:
        out = []
        for p in self.root.rglob("*"):
            try:
                st = p.stat()
            except FileNotFoundError:  # evicted by another process meanwhile
                continue
            if p.is_file() and not p.name.startswith(".tmp-"):
                out.append((st.st_mtime, st.st_size, p))
        return out

    def _evict(self) -> None:
        files = sorted(self._files())
        total = sum(size for _, size, _ in files)
        recent = time.time() - CACHE_KEEP_SECONDS
        for mtime, size, path in files:
            if total <= self.max_bytes * CACHE_LOW_WATER or mtime >= recent:
                break
            path.unlink(missing_ok=True)
            total -= size
        self._bytes = total


class ObjectImageStore:
    """An S3-compatible bucket through fsspec/s3fs. put returns after the PUT succeeded (S3 acknowledges
    only stored objects); no listing cache, so exists/size always ask the server."""

    def __init__(self, url: str, *, cache: LocalCache, endpoint_url: str = "", **options: Any) -> None:
        bucket_prefix = url.removeprefix("s3://").strip("/")
        if not bucket_prefix:
            raise ValueError(f"image store {url!r}: expected s3://bucket[/prefix]")
        self.url = url
        self.base = bucket_prefix
        self.cache = cache
        client_kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
        # Credentials/region: s3fs leaves them to botocore's standard chain (AWS_* variables, profiles,
        # instance roles). skip_instance_cache: each store owns its client (tests run several servers).
        self.fs = fsspec.filesystem(
            "s3", client_kwargs=client_kwargs, use_listings_cache=False, skip_instance_cache=True, **options
        )

    def __repr__(self) -> str:
        return f"ObjectImageStore({self.url!r}, cache={str(self.cache.root)!r})"

    def _path(self, key: str) -> str:
        return f"{self.base}/{check_key(key)}"

    @property
    def local_root(self) -> Path:
        return self.cache.root

    def put(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(key), data)

    def get(self, key: str) -> bytes:
        cached = self.cache.hit(key)
        if cached is not None:
            return cached.read_bytes()
        data: bytes = self.fs.cat_file(self._path(key))
        return data

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def size(self, key: str) -> int | None:
        try:
            return int(self.fs.info(self._path(key))["size"])
        except FileNotFoundError:
            return None

    def local_path(self, key: str) -> Path:
        cached = self.cache.hit(key)
        if cached is not None:
            return cached
        try:
            data = self.fs.cat_file(self._path(key))
        except FileNotFoundError:
            return self.cache.path(key)  # absent: a path that does not exist, like a missing local file
        return self.cache.add(key, data)

    def sweep(self) -> int:
        return remove_stale_tmp_files(self.cache.root)


def open_image_store(settings: Settings) -> ImageStore:
    """The store INSPECTION_IMAGE_STORE names (empty: data_dir, as before)."""
    url = settings.image_store.strip()
    if not url:
        return LocalImageStore(settings.data_dir)
    if url.startswith("file://"):
        return LocalImageStore(Path(url.removeprefix("file://")))
    if url.startswith("s3://"):
        cache_dir = settings.image_cache_dir or settings.data_dir / "image-cache"
        cache = LocalCache(cache_dir, max_bytes=settings.image_cache_mb * 1024 * 1024)
        return ObjectImageStore(url, cache=cache, endpoint_url=settings.image_store_endpoint_url)
    raise ValueError(f"INSPECTION_IMAGE_STORE must be empty, file://PATH or s3://BUCKET/PREFIX, got {url!r}")
