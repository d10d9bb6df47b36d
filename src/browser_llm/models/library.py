"""The model library: catalog + store + getting files onto disk. No engine here.

One job per model id: two callers asking for the same model share one
download (or one assembly). Used by the server's registry and by the
`browser-llm models` commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from browser_llm.core.errors import ModelNotFoundError, StorageError, ValidationError
from browser_llm.models.catalog import Catalog, CatalogEntry, ModelSource
from browser_llm.models.download import DownloadProgress, RetryPolicy, download_file
from browser_llm.models.gguf_check import check_gguf
from browser_llm.models.ids import validate_model_id
from browser_llm.models.storage import ModelStore

__all__ = ["FetchJob", "ModelLibrary"]

logger = logging.getLogger(__name__)

_VERIFIED = ".verified.json"


@dataclass
class FetchJob:
    task: asyncio.Task[Path]
    progress: DownloadProgress


class ModelLibrary:
    def __init__(
        self,
        catalog: Catalog,
        store: ModelStore,
        retry: RetryPolicy | None = None,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self._retry = retry or RetryPolicy()
        self._client_factory = client_factory
        self._jobs: dict[str, FetchJob] = {}

    # ---- lookup ----------------------------------------------------------
    def entry(self, model_id: str) -> CatalogEntry:
        validate_model_id(model_id)
        entry = self.catalog.get(model_id)
        if entry is None:
            raise ModelNotFoundError(f"model '{model_id}' is not in the catalog")
        return entry

    def used_bytes(self) -> int:
        return self.store.used_bytes(self.catalog.all())

    def job(self, model_id: str) -> FetchJob | None:
        return self._jobs.get(model_id)

    def progress(self, entry: CatalogEntry) -> DownloadProgress | None:
        """Live progress of a running fetch, or a resumable partial's size."""
        job = self._jobs.get(entry.id)
        if job is not None:
            return job.progress
        partial = self.store.partial_bytes(entry)
        if partial:
            return DownloadProgress(state="paused", bytes_done=partial)
        return None

    # ---- getting a file on disk -----------------------------------------
    def check_can_fetch(self, entry: CatalogEntry) -> None:
        """Fails fast (before a job starts) when the file cannot be fetched or stored."""
        if self.store.is_local(entry) or entry.id in self._jobs:
            return
        source = entry.source
        if source.type == "file":
            raise StorageError(
                f"the file of model '{entry.id}' is missing: {source.file}",
                {"reason": "file_missing", "file": source.file},
            )
        if source.type == "package":
            raise StorageError(
                f"model '{entry.id}' comes from a package that is not installed: "
                f"pip install {source.pip}",
                {"reason": "package_missing", "pip": source.pip},
            )
        needed = max(0, entry.size_bytes - self.store.partial_bytes(entry))
        self.store.check_room(needed, self.used_bytes())

    def fetch(self, entry: CatalogEntry) -> FetchJob:
        """The running job that puts this model's file on disk, started if needed."""
        job = self._jobs.get(entry.id)
        if job is None:
            progress = DownloadProgress()
            task = asyncio.get_running_loop().create_task(self._fetch(entry, progress))
            job = FetchJob(task, progress)
            self._jobs[entry.id] = job
            task.add_done_callback(self._forget_job(entry.id))
        return job

    def _forget_job(self, model_id: str) -> Callable[[asyncio.Task[Path]], None]:
        def forget(task: asyncio.Task[Path]) -> None:
            self._jobs.pop(model_id, None)
            if not task.cancelled():
                task.exception()  # kept by whoever awaits; read here to silence asyncio

        return forget

    async def ensure_local(self, entry: CatalogEntry) -> Path:
        """The model's file, fetching it first if needed. A caller that gives up
        (cancelled) does not cancel the shared job."""
        path = self.store.path_for(entry)
        if path is not None:
            return path
        self.check_can_fetch(entry)
        return await asyncio.shield(self.fetch(entry).task)

    async def _fetch(self, entry: CatalogEntry, progress: DownloadProgress) -> Path:
        existing = self.store.path_for(entry)
        if existing is not None:
            progress.state = "done"
            return existing
        target = self.store.target_path(entry)
        if entry.source.assemble:
            await asyncio.to_thread(self._assemble, entry, target, progress)
            return target
        url = entry.source.url
        if entry.source.type != "url" or not url:
            self.check_can_fetch(entry)  # raises the precise reason
            raise StorageError(f"model '{entry.id}' has no download source")
        client = self._client_factory() if self._client_factory else None
        try:
            logger.info("downloading model %s from %s", entry.id, url)
            digest = await download_file(
                url,
                target,
                sha256=entry.sha256,
                progress=progress,
                check_room=lambda n: self.store.check_room(n, self.used_bytes()),
                validate=check_gguf,
                policy=self._retry,
                client=client,
            )
        finally:
            if client is not None:
                await client.aclose()
        logger.info(
            "model %s downloaded (%d bytes, sha256 %s)", entry.id, progress.bytes_done, digest
        )
        return target

    def _assemble(self, entry: CatalogEntry, target: Path, progress: DownloadProgress) -> None:
        # The package rebuilds its GGUF from chunk packages and checks it against its
        # own sha256; it writes to our partial path, renamed only once whole and checked.
        package = importlib.import_module(entry.source.package or "")
        if entry.sha256 and getattr(package, "EXPECTED_SHA256", entry.sha256) != entry.sha256:
            raise StorageError("the installed package carries a different sha256 than the catalog")
        progress.state = "assembling"
        progress.total_bytes = entry.size_bytes
        self.store.check_room(entry.size_bytes, self.used_bytes())
        partial = self.store.partial_path(entry)
        partial.parent.mkdir(parents=True, exist_ok=True)
        try:
            package.assemble(partial, overwrite=True)
            check_gguf(partial)
        except (OSError, ValueError) as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(
                f"could not assemble model '{entry.id}' from its packages: {exc}",
                {"reason": "assemble_failed"},
            ) from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, target)
        progress.bytes_done = target.stat().st_size
        progress.state = "done"

    # ---- user models -------------------------------------------------------
    def add(
        self,
        model_id: str,
        *,
        path: Path | None = None,
        url: str | None = None,
        sha256: str | None = None,
        name: str | None = None,
    ) -> CatalogEntry:
        """Adds a local GGUF (checked now) or a URL to download later."""
        validate_model_id(model_id)
        if self.catalog.is_builtin(model_id):
            raise ValidationError(f"'{model_id}' is a built-in model id", {"field": "id"})
        if (path is None) == (url is None):
            raise ValidationError("give exactly one of a file path or a URL")
        if sha256 is not None and (
            len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower())
        ):
            raise ValidationError("sha256 must be 64 hex digits", {"field": "sha256"})
        size, quant, params = 0, "unknown", "unknown"
        if path is not None:
            path = path.expanduser().resolve()
            info = check_gguf(path)
            size = info.file_size
            source = ModelSource(type="file", file=str(path))
            description = f"Local file {path.name} ({info.architecture or 'unknown'} architecture)"
        else:
            assert url is not None
            if not url.startswith(("https://", "http://")):
                raise ValidationError("the URL must be http(s)", {"field": "url"})
            source = ModelSource(type="url", url=url)
            description = f"Downloaded from {url}"
        entry = CatalogEntry(
            id=model_id,
            name=name or model_id,
            description=description,
            size_bytes=size,
            vram_required="unknown",
            parameters_total=params,
            quantization=quant,
            speed_tier="medium",
            quality_tier="basic",
            capabilities=("text-generation",),
            source=source,
            sha256=sha256.lower() if sha256 else None,
            user_added=True,
        )
        self.catalog.add_user_entry(entry)
        return entry

    def check_removable(self, entry: CatalogEntry) -> None:
        if entry.source.type == "package" and not entry.source.assemble:
            raise ValidationError(
                f"model '{entry.id}' is a file inside the pip package {entry.source.pip}; "
                "uninstall the package to remove it",
                {"reason": "packaged"},
            )

    async def remove(self, entry: CatalogEntry) -> int:
        """Deletes what this server stored for the model; returns the bytes freed.

        Packaged files belong to pip and a user's own file stays where it is:
        removing those only forgets the entry (user) or the assembled copy.
        """
        self.check_removable(entry)
        job = self._jobs.get(entry.id)
        if job is not None:
            job.task.cancel()
            with contextlib.suppress(BaseException):
                await job.task
        freed = 0
        for path in (
            self.store.target_path(entry),
            self.store.partial_path(entry),
            self.store.models_dir / f"{entry.id}.gguf.lock",
        ):
            with contextlib.suppress(FileNotFoundError):
                freed += path.stat().st_size
                path.unlink()
        self._forget_verified(entry.id)
        if entry.user_added:
            self.catalog.remove_user_entry(entry.id)
        return freed

    # ---- which files have passed the child-process probe -------------------
    def _verified(self) -> dict[str, Any]:
        try:
            data = json.loads((self.store.models_dir / _VERIFIED).read_text("utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _stamp(path: Path) -> list[Any]:
        st = path.stat()
        return [str(path.resolve()), st.st_size, st.st_mtime_ns]

    def is_verified(self, model_id: str, path: Path) -> bool:
        return self._verified().get(model_id) == self._stamp(path)

    def mark_verified(self, model_id: str, path: Path) -> None:
        data = {**self._verified(), model_id: self._stamp(path)}
        self._write_verified(data)

    def _forget_verified(self, model_id: str) -> None:
        data = self._verified()
        if data.pop(model_id, None) is not None:
            self._write_verified(data)

    def _write_verified(self, data: dict[str, Any]) -> None:
        folder = self.store.models_dir
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (_VERIFIED + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, folder / _VERIFIED)
