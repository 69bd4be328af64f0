"""How anything is written to the lake or a backup location: whole, or not at all.

One rule for every writer (Parquet partitions, MQTT landing batches, the model registry, dashboards,
backup objects and manifests, leases and markers):

* **Local disk**: the bytes go to a hidden staging file beside the destination
  (``.<name>.<uuid>.tmp``, which ``*.parquet``/``*.jsonl`` globs, the landing sensor and backups
  ignore), then ``os.replace`` publishes them in one atomic rename. With ``fsync`` the file is flushed
  to disk before the rename and the folder after it, so the file survives a power cut as well as a
  crash: the MQTT committer acknowledges messages right after.
* **Object stores** (S3, MinIO): an object appears whole when the request that creates it completes.
  Bytes in memory are one PUT; a streamed write (a large Parquet file) goes to a staging key first
  and is published by one server-side copy, because a failed streaming upload would otherwise be
  closed as a truncated object under the final name.

``is_local`` is the one test of "is this a local path" for the whole package: a URL, a UPath or an
fsspec filesystem.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any, BinaryIO

from fsspec import AbstractFileSystem
from fsspec.utils import get_protocol
from upath import UPath

LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
STAGING_SUFFIX = ".tmp"


def is_local(target: str | os.PathLike | UPath | AbstractFileSystem) -> bool:
    """Whether ``target`` (a URL or path, a UPath, or an fsspec filesystem) is on the local disk."""
    if isinstance(target, AbstractFileSystem):
        protocol: Any = target.protocol
    elif isinstance(target, UPath):
        protocol = target.protocol
    else:
        protocol = get_protocol(os.fspath(target))
    if not isinstance(protocol, str):
        protocol = protocol[0]
    return protocol in LOCAL_PROTOCOLS


def staging_path(final: str) -> str:
    """A hidden, unique staging name beside ``final`` (an fs path): ``<folder>/.<name>.<uuid>.tmp``."""
    folder, _, name = final.rpartition("/")
    return f"{folder}/.{name}.{uuid.uuid4().hex}{STAGING_SUFFIX}"


def is_staging_name(name: str) -> bool:
    """A staging file (``staging_path``) is never part of the data: readers and backups skip it."""
    return name.startswith(".") and name.endswith(STAGING_SUFFIX)


def publish(fs: AbstractFileSystem, staged: str, final: str, fsync: bool = False) -> None:
    """Move a fully written staging file over ``final``: one rename on local disks (then, with
    ``fsync``, the folder is flushed so the rename survives a power cut), one copy on object stores."""
    if is_local(fs):
        os.replace(staged, final)
        if fsync:
            _fsync_folder(os.path.dirname(final))
    else:
        fs.mv(staged, final)


def write_atomic(path: UPath, data: bytes | Callable[[BinaryIO], None], fsync: bool = False) -> str:
    """Publish ``path`` with ``data`` (bytes, or a function writing to a binary handle); return its URL.

    Readers see the previous version or the new one, never part of it; on failure nothing is
    published and the staging file is removed. ``fsync`` is for writes that are acknowledged to a
    sender right after (local disks only; object stores are durable once the request returns).
    """
    fs = path.fs
    if is_local(path):
        _write_local(path.path, data, fsync)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        fs.pipe_file(path.path, bytes(data))
    else:
        fs.makedirs(path.parent.path, exist_ok=True)
        staged = staging_path(path.path)
        try:
            with fs.open(staged, "wb") as handle:
                data(handle)
            publish(fs, staged, path.path)
        except BaseException:
            _remove_quietly(fs, staged)
            raise
    return str(path)


def _write_local(final: str, data: bytes | Callable[[BinaryIO], None], fsync: bool) -> None:
    os.makedirs(os.path.dirname(final), exist_ok=True)
    staged = staging_path(final)
    try:
        with open(staged, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(staged, final)
    except BaseException:
        if os.path.exists(staged):
            os.unlink(staged)
        raise
    if fsync:
        _fsync_folder(os.path.dirname(final))


def _fsync_folder(folder: str) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_quietly(fs: AbstractFileSystem, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path)
    except Exception:  # the original error matters more than a leftover staging object
        pass
