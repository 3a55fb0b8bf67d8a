"""Artifacts (uploads, checkpoints, indexes, exports) where every host can reach them: the local
artifact folder (the default), or an S3-compatible bucket that the folder caches.

The code reads and writes artifacts as local files (torch loads checkpoints from a folder, span
indexes and gradient stores are memory-mapped), so the store is a layer around that folder:

    path = Path(settings.ARTIFACT_DIR) / "runs" / "7"     # write it here, then
    artifact_publish(path)                                # before the row naming it commits
    checkpoint.path = artifact_ref(path)                  # "runs/7": the same on every host
    ...
    model_dir = artifact_local(checkpoint.path)           # on any host, before reading it

Rows store keys (paths under the artifact folder), so hosts whose artifact folders differ share
them; `artifact_path` turns a key into this host's path.

With `TRAILMARK_ARTIFACT_STORE` unset, the folder is the store and both calls cost nothing. With
`TRAILMARK_ARTIFACT_STORE=s3://bucket/prefix`, `artifact_publish` uploads the file, or every file
of the folder and then a marker listing them (so a reader never takes half a folder), and
`artifact_local` downloads what this host lacks into a temporary name and renames it into place.
The client is boto3's, configured by the usual variables (`AWS_ENDPOINT_URL` for a non-AWS
server, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`). An artifact stays
cached on each host that read it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings

from core.conf import setting

MARKER = ".trailmark-complete"  # the last object of a published folder: its files and sizes


class ArtifactMissing(FileNotFoundError):
    """An artifact the store does not hold (not published yet, or removed)."""


def _root() -> Path:
    return Path(settings.ARTIFACT_DIR).resolve()


def artifact_key(path: str | Path) -> str | None:
    """The artifact's key in the store (its path under the artifact folder), or None for a path
    outside it (a server folder staff registered, which is not the store's)."""
    resolved = Path(path).resolve()
    root = _root()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else None


def artifact_ref(path: str | Path) -> str:
    """What a row stores for an artifact: its key (its path under the artifact folder), the
    same on every host whatever its artifact folder; a path outside the folder (a server folder
    staff registered for ingest) as it is."""
    key = artifact_key(path)
    return key if key is not None else str(Path(path).resolve())


def artifact_path(ref: str | Path) -> Path:
    """This host's path for what a row stores: a key under this host's artifact folder; an
    absolute path (a server folder, or a row written before rows held keys) as it is."""
    path = Path(ref)
    return path if path.is_absolute() or not str(ref) else _root() / path


def _store() -> tuple[str, str] | None:
    """(bucket, prefix) of the configured object store, or None (the folder is the store)."""
    url = str(setting("ARTIFACT_STORE") or "")
    if not url:
        return None
    if not url.startswith("s3://"):
        raise ValueError(f"TRAILMARK_ARTIFACT_STORE must be an s3:// URL, not {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


@lru_cache(maxsize=4)
def _client(endpoint: str | None) -> Any:
    import boto3  # loaded by the processes that move artifacts

    return boto3.client("s3", endpoint_url=endpoint or None)


def _s3() -> Any:
    return _client(os.environ.get("AWS_ENDPOINT_URL"))


def _object(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


def artifact_publish(path: str | Path, *, only: list[Path] | None = None) -> None:
    """Copy a finished artifact (a file, or a folder and everything under it) to the store. For
    a folder whose other files are there already (shards each worker published), `only` names
    the files to upload; the marker lists them all."""
    path = artifact_path(path)
    store, key = _store(), artifact_key(path)
    if store is None or key is None:
        return
    bucket, prefix = store
    client = _s3()
    if path.is_file():
        client.upload_file(str(path), bucket, _object(prefix, key))
        return
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != MARKER)
    listing = {f.relative_to(path).as_posix(): f.stat().st_size for f in files}
    for file in files if only is None else only:
        client.upload_file(str(file), bucket,
                           _object(prefix, f"{key}/{file.relative_to(path).as_posix()}"))
    marker = json.dumps(listing, sort_keys=True).encode()
    client.put_object(Bucket=bucket, Key=_object(prefix, f"{key}/{MARKER}"), Body=marker)
    _local_marker(path).write_bytes(marker)  # this host's copy is whole too


def artifact_local(path: str | Path) -> Path:
    """This host's copy of an artifact, fetched from the store when it has none (a folder: when
    it has not the whole of it, i.e. no marker; only the files it lacks are fetched). `path`:
    a path or what a row stores (`artifact_ref`)."""
    path = artifact_path(path)
    store, key = _store(), artifact_key(path)
    if store is None or key is None or path.is_file() or _local_marker(path).is_file():
        return path
    bucket, prefix = store
    client = _s3()
    from botocore.exceptions import ClientError

    try:
        body = client.get_object(Bucket=bucket, Key=_object(prefix, f"{key}/{MARKER}"))
    except ClientError:
        body = None
    if body is None:
        if path.is_dir():  # being built here, or never published: what this host has
            return path
        _download(client, bucket, _object(prefix, key), path, key)
        return path
    marker = body["Body"].read()
    listing = json.loads(marker)
    whole = not path.exists()
    target = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex}") if whole else path
    try:
        for relative, size in listing.items():
            if not (target / relative).is_file():
                _download(client, bucket, _object(prefix, f"{key}/{relative}"),
                          target / relative, f"{key}/{relative}")
            if (target / relative).stat().st_size != size:
                raise ArtifactMissing(f"artifact {key}: {relative} is not the size "
                                      f"published ({size} bytes)")
        if whole:
            try:
                target.rename(path)
            except OSError:
                if not _local_marker(path).is_file():  # not another process that fetched it
                    raise
        _local_marker(path).write_bytes(marker)
    finally:
        if whole and target.exists():
            shutil.rmtree(target, ignore_errors=True)
    return path


def artifact_local_files(folder: str | Path, prefix: str) -> list[Path]:
    """The files of a folder whose names start with `prefix` (a shard's), fetched from the store
    when this host lacks them; those this host has are taken as they are."""
    folder = artifact_path(folder)
    store, key = _store(), artifact_key(folder)
    if store is not None and key is not None:
        bucket, root = store
        client = _s3()
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=_object(root, f"{key}/{prefix}"))
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                if not (folder / name).is_file():
                    _download(client, bucket, item["Key"], folder / name, f"{key}/{name}")
    return sorted(folder.glob(f"{prefix}*"))


def _local_marker(folder: Path) -> Path:
    """Beside the folder, not in it: a model folder's hash covers every file inside."""
    return folder.with_name(f".{folder.name}{MARKER}")


def _download(client: Any, bucket: str, name: str, target: Path, key: str) -> None:
    """One object to a file, under a temporary name renamed into place."""
    from botocore.exceptions import ClientError

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex}")
    try:
        client.download_file(bucket, name, str(staging))
        staging.replace(target)
    except ClientError as exc:
        raise ArtifactMissing(f"artifact {key} is not in the store") from exc
    finally:
        staging.unlink(missing_ok=True)


def artifact_remove(path: str | Path) -> None:
    """Delete an artifact here and from the store."""
    path = artifact_path(path)
    _local_marker(path).unlink(missing_ok=True)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
    store, key = _store(), artifact_key(path)
    if store is None or key is None:
        return
    bucket, prefix = store
    client = _s3()
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=_object(prefix, key))
    for page in pages:
        names = [o["Key"] for o in page.get("Contents", [])
                 if o["Key"] == _object(prefix, key)
                 or o["Key"].startswith(_object(prefix, f"{key}/"))]
        if names:
            client.delete_objects(Bucket=bucket,
                                  Delete={"Objects": [{"Key": n} for n in names]})
