"""Artifacts (uploads, checkpoints, indexes, exports) where every host can reach them: the local
artifact folder (the default), or an S3-compatible bucket that the folder caches.

The code reads and writes artifacts as local files (torch loads checkpoints from a folder, span
indexes and gradient stores are memory-mapped), so the store is a layer around that folder:

    path = Path(settings.ARTIFACT_DIR) / "runs" / "7"     # write it here, then
    artifact_publish(path)                                # before the row naming it commits
    ...
    model_dir = artifact_local(checkpoint.path)           # on any host, before reading it

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


def artifact_publish(path: str | Path) -> None:
    """Copy a finished artifact (a file, or a folder and everything under it) to the store."""
    store, key = _store(), artifact_key(path)
    if store is None or key is None:
        return
    bucket, prefix = store
    path = Path(path)
    client = _s3()
    if path.is_file():
        client.upload_file(str(path), bucket, _object(prefix, key))
        return
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != MARKER)
    listing = {}
    for file in files:
        relative = file.relative_to(path).as_posix()
        client.upload_file(str(file), bucket, _object(prefix, f"{key}/{relative}"))
        listing[relative] = file.stat().st_size
    client.put_object(Bucket=bucket, Key=_object(prefix, f"{key}/{MARKER}"),
                      Body=json.dumps(listing, sort_keys=True).encode())


def artifact_local(path: str | Path) -> Path:
    """This host's copy of an artifact, fetched from the store when it has none."""
    path = Path(path)
    store, key = _store(), artifact_key(path)
    if store is None or key is None or path.exists():
        return path
    bucket, prefix = store
    client = _s3()
    from botocore.exceptions import ClientError

    staging = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex}")
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        try:
            body = client.get_object(Bucket=bucket, Key=_object(prefix, f"{key}/{MARKER}"))
        except ClientError:
            body = None
        if body is None:  # a single file, or nothing
            try:
                client.download_file(bucket, _object(prefix, key), str(staging))
            except ClientError as exc:
                raise ArtifactMissing(f"artifact {key} is not in the store") from exc
        else:
            listing = json.loads(body["Body"].read())
            staging.mkdir()
            for relative, size in listing.items():
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, _object(prefix, f"{key}/{relative}"), str(target))
                if target.stat().st_size != size:
                    raise ArtifactMissing(f"artifact {key}: {relative} is not the size "
                                          f"published ({size} bytes)")
        try:
            staging.rename(path)
        except OSError:
            if not path.exists():  # not another process that fetched it first
                raise
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        elif staging.exists():
            staging.unlink()
    return path


def artifact_remove(path: str | Path) -> None:
    """Delete an artifact here and from the store."""
    path = Path(path)
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
