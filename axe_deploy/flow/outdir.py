"""The build folder: which folders a run may write, a lock per folder, and a temporary
sibling that becomes the folder only when the flow succeeds.

A run writes into an absent folder, an empty one, or an earlier axe-deploy build (it
holds :data:`MARKER`). Anything else is somebody's files: refused unless ``force``.
The working directory, the home folder, the filesystem root, their ancestors and any
folder that is or contains a repository (a ``.git`` inside) are refused even with
``force``: replacing them would delete a project.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import threading
from pathlib import Path

MARKER = ".axe-deploy-build"


class OutDirError(ValueError):
    """An output folder the run may not use; the message names the path and the fix."""


def _protected(out: Path) -> str | None:
    """Why ``out`` may never be replaced, or None."""
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if out == Path(out.anchor):
        return "it is the filesystem root"
    if out == home or out in home.parents:
        return "it is the home folder or contains it"
    if out == cwd or out in cwd.parents:
        return "it is the working directory or contains it"
    if (out / ".git").exists():
        return "it is a repository root"
    return None


def check_out(out: str | Path, force: bool = False) -> Path:
    """The resolved output folder, after checking that a run may replace it."""
    raw = str(out)
    if not raw.strip():
        raise OutDirError("--out is empty: name the build folder, e.g. --out build/my_flow")
    try:
        return _check_out(Path(os.path.expanduser(raw)).resolve(), raw, force)
    except OSError as e:  # a name too long, a folder we may not list, ...
        raise OutDirError(f"--out {raw}: {e.strerror or e}") from None


def _check_out(out: Path, raw: str, force: bool) -> Path:
    why = _protected(out)
    if why:
        raise OutDirError(f"--out {raw}: refusing to write {out}: {why} (not even with --force); "
                          f"name a new folder, e.g. --out build/my_flow")
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise OutDirError(f"--out {raw}: {parent} is a file, not a folder")
    if out.is_dir() and not (out / MARKER).is_file() and any(out.iterdir()):
        if not force:
            raise OutDirError(f"--out {raw}: {out} is not empty and not an axe-deploy build; "
                              f"name a new folder, or pass --force to replace its contents")
        repo = _repository_inside(out)
        if repo:
            raise OutDirError(f"--out {raw}: refusing to replace {out}: it contains the repository {repo} "
                              f"(not even with --force); name a new folder, e.g. --out build/my_flow")
    return out


def _repository_inside(folder: Path) -> Path | None:
    """A repository (a folder with ``.git``) under ``folder``, or None. The walk costs what
    deleting the folder would cost, and --force is about to delete it."""
    for root, dirs, files in os.walk(folder):
        if ".git" in dirs or ".git" in files:
            return Path(root)
    return None


def _mkdir(path: Path, raw: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutDirError(f"--out {raw}: cannot create {path}: {e.strerror or e}") from None


def _write_marker(folder: Path, flow: str) -> None:
    (folder / MARKER).write_text(json.dumps({"tool": "axe-deploy", "flow": flow}) + "\n")


@contextlib.contextmanager
def _lock(out: Path, raw: str):
    """An exclusive lock on ``.<name>.lock`` beside ``out``; the file is removed on release."""
    path = out.parent / f".{out.name}.lock"
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutDirError(f"--out {raw}: cannot create files in {out.parent}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutDirError(f"--out {raw}: another axe-deploy run is writing {out} (lock {path}); "
                              f"wait for it or choose another folder") from None
        # The holder before us may have removed the file after we opened it: lock the new one.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


class Terminated(BaseException):
    """SIGTERM as an exception, so that the temporary folder is removed on the way out."""


@contextlib.contextmanager
def _sigterm_raises():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove_stale(out: Path) -> None:
    """Temporary folders of earlier runs into ``out`` that were killed (SIGKILL): ours by
    name and marker, and nobody writes them while we hold the lock."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(tmp|old)-\d+")
    for p in out.parent.iterdir():
        if pattern.fullmatch(p.name) and p.is_dir() and (p / MARKER).is_file():
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def build_folder(out: str | Path, *, flow: str = "flow", force: bool = False):
    """Yield a temporary folder beside ``out``; on normal exit it replaces ``out``, on
    any exception (SIGINT and SIGTERM included) it is removed and ``out`` is untouched."""
    raw = str(out)
    out = check_out(out, force)
    _mkdir(out.parent, raw)
    with _lock(out, raw), _sigterm_raises():
        out = check_out(out, force)  # again, now that no other run can change it
        _remove_stale(out)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        try:
            tmp.mkdir()
            _write_marker(tmp, flow)
            yield tmp
            if out.exists():
                out.rename(old)
                _write_marker(old, flow)  # so that a kill before the next line leaves it to _remove_stale
            tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if old.exists() and not out.exists():
                old.rename(out)
            raise
        shutil.rmtree(old, ignore_errors=True)
