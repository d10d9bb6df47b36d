"""`browser-llm models list | pull ID | add PATH|URL --id ID | rm ID`.

These work on the models folder directly (no server needed), with the same
catalog, download, checksum and GGUF checks as the server. A running server
sees the result at its next request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table

from browser_llm.config import Settings
from browser_llm.core.errors import BrowserLLMError
from browser_llm.models.catalog import Catalog
from browser_llm.models.library import ModelLibrary
from browser_llm.models.storage import ModelStore

__all__ = ["add_models_parser", "run_models"]


def add_models_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = sub.add_parser("models", help="list, download, add or remove models")
    msub = models.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="the catalog, with what is on disk")
    pull = msub.add_parser("pull", help="download (or assemble) a model, with a progress bar")
    pull.add_argument("id")
    add = msub.add_parser("add", help="add a local GGUF file or an http(s) URL to the catalog")
    add.add_argument("source", help="path to a .gguf file, or an http(s) URL")
    add.add_argument("--id", required=True, dest="model_id", help="model id (a-z 0-9 . _ -)")
    add.add_argument("--name", help="display name")
    add.add_argument("--sha256", help="expected sha256 (URLs: checked after download)")
    rm = msub.add_parser("rm", help="delete a downloaded model (and forget an added one)")
    rm.add_argument("id")


def _library() -> ModelLibrary:
    settings = Settings()
    store = ModelStore(settings.models_dir, settings.storage_quota_gb)
    return ModelLibrary(Catalog.builtin(settings.models_dir), store)


def _list(lib: ModelLibrary, console: Console) -> int:
    table = Table(Column("id", no_wrap=True), "name", "size", "source", "on disk")
    for entry in lib.catalog.all():
        on_disk = "yes" if lib.store.is_local(entry) else "no"
        partial = lib.store.partial_bytes(entry)
        if partial and on_disk == "no":
            on_disk = f"partial ({partial / 1e6:.0f} MB)"
        table.add_row(entry.id, entry.name, entry.size, entry.source.type, on_disk)
    console.print(table)
    used = lib.used_bytes()
    console.print(f"models folder: {lib.store.models_dir}  used: {used / 1e9:.2f} GB")
    return 0


async def _pull(lib: ModelLibrary, model_id: str, console: Console) -> int:
    entry = lib.entry(model_id)
    if lib.store.path_for(entry) is not None:
        console.print(f"{model_id} is already on disk: {lib.store.path_for(entry)}")
        return 0
    lib.check_can_fetch(entry)
    job = lib.fetch(entry)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(model_id, total=entry.size_bytes or None)
        while not job.task.done():
            p = job.progress
            bar.update(
                task,
                completed=p.bytes_done,
                total=p.total_bytes or bar.tasks[0].total,
                description=f"{model_id} [{p.state}]",
            )
            await asyncio.wait({job.task}, timeout=0.2)
        path = job.task.result()
        bar.update(task, completed=path.stat().st_size, total=path.stat().st_size)
    console.print(f"{model_id}: {path}")
    return 0


def run_models(args: argparse.Namespace) -> int:
    console = Console(stderr=False)
    lib = _library()
    try:
        if args.models_command == "list":
            return _list(lib, console)
        if args.models_command == "pull":
            return asyncio.run(_pull(lib, args.id, console))
        if args.models_command == "add":
            is_url = args.source.startswith(("http://", "https://"))
            entry = lib.add(
                args.model_id,
                path=None if is_url else Path(args.source),
                url=args.source if is_url else None,
                sha256=args.sha256,
                name=args.name,
            )
            console.print(f"added {entry.id} ({entry.source.type}); load it with the API")
            return 0
        if args.models_command == "rm":
            freed = asyncio.run(lib.remove(lib.entry(args.id)))
            console.print(f"removed {args.id}; freed {freed / 1e6:.1f} MB")
            return 0
    except BrowserLLMError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    return 2
