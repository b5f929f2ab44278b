"""Can ganforge write here? The destination checks of every command that writes.

``ganforge run --out``, ``sample -o``, ``eval --json`` and ``export -o`` call a check before they
start the work, so a path that cannot take the output fails at once, in one line naming the path
and what is wrong with it (a usage error, exit 2), not after minutes of sampling or metrics.

The checks change nothing on disk: missing folders are not created here (the writer creates them
when it writes), and the one probe file is removed at once. Then :func:`replacing` writes the
output to a temporary file in the same folder and renames it into place, so a full disk, a signal
or a crash never leaves a partial file under the user's name, and an ``OSError`` while writing
is reported in the same plain words.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ganforge.errors import UsageError
from ganforge.faults import crash_point
from ganforge.run.checkpoint import fsync_file

NAME_MAX = 255
PATH_MAX = 4096


def check_output_file(path: str | os.PathLike[str], option: str = "-o", example: str = "output",
                      size: int = 0) -> Path:
    """Refuse an output file ``path`` that cannot be written (one :class:`UsageError` line).

    The path must not be a folder, no part above it may be a file, its names must fit the file
    system, and the folder that will hold it (or the nearest one that exists) must take a new
    file (and ``size`` bytes, when given). An existing file is fine: it will be replaced.
    """
    out = Path(path)
    where = f"{option} {out}"
    existing, missing = _nearest_existing(out, where)
    if not missing:
        if existing.is_dir():
            raise UsageError(f"{where} is a folder; give a file name such as {out / example}")
        if not existing.is_file():  # a device or a pipe (/dev/stdout): written in place
            if not os.access(existing, os.W_OK):
                raise UsageError(f"{where} is not writable; choose another {option}")
            return out
        folder = Path(os.path.realpath(existing)).parent
    else:
        folder = existing
    _check_folder(folder, where, option, existing / missing[0] if len(missing) > 1 else None, size)
    return out


def check_run_folder(path: str | os.PathLike[str] | None, option: str = "--out") -> Path | None:
    """Refuse a run folder that cannot be written: a file in its place or above it, a name too
    long, or a folder (or the nearest existing one above it) that takes no new files."""
    if path is None or str(path) == "":
        return None
    out = Path(path)
    where = f"{option} {out}"
    existing, missing = _nearest_existing(out, where)
    if not missing and not existing.is_dir():
        raise UsageError(f"{where} is a file, not a folder; choose another {option}")
    _check_folder(existing, where, option, existing / missing[0] if missing else None, 0)
    return out


def check_space(path: str | os.PathLike[str], size: int, option: str = "-o") -> None:
    """Refuse to write ``size`` bytes at ``path`` when its file system has less free."""
    out = Path(path)
    folder, _ = _nearest_existing(out.parent, f"{option} {out}")
    _require_space(folder, f"{option} {out}", option, size)


@contextmanager
def replacing(path: str | os.PathLike[str], option: str = "-o") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is renamed to ``path``.

    On any exit without success the temporary file is removed, and an ``OSError`` (a full disk,
    a mount gone read-only) becomes one :class:`UsageError` line naming ``path``. A device or a
    pipe (``/dev/stdout``) is written in place.
    """
    out = Path(path)
    where = f"{option} {out}"
    if out.exists() and not out.is_dir() and not out.is_file():
        try:
            yield out
        except OSError as exc:
            raise UsageError(f"{where}: {_explain(exc, out)}; {_hint(exc, option)}") from None
        return
    target = Path(os.path.realpath(out)) if out.is_symlink() else out
    tmp = target.parent / f".{target.stem[:80]}.tmp-{os.getpid()}-{secrets.token_hex(3)}{target.suffix}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        crash_point("output-written")  # whole in the temporary file, not yet under its name
        fsync_file(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno is None and _full(target.parent):  # numpy's tofile: "N requested and M written"
            exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        raise UsageError(f"{where}: {_explain(exc, target.parent)}; {_hint(exc, option)} "
                         f"(nothing was written)") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


# -- internals ---------------------------------------------------------------------------------

def _explain(exc: OSError, place: Path) -> str:
    """What an ``OSError`` says about ``place``, in plain words."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the file system of {place}"
    if code == errno.EROFS:
        return f"{place} is read-only (a read-only file system)"
    if code in (errno.EACCES, errno.EPERM):
        return f"{place} is read-only for this user (permission denied)"
    if code == errno.ENAMETOOLONG:
        return "a name is too long for the file system"
    if code == errno.ENOTDIR:
        return f"a part of {place} is a file, not a folder"
    if code == errno.EISDIR:
        return f"{exc.filename or place} is a folder, not a file"
    return f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")


def _hint(exc: OSError, option: str) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space or choose another {option}"
    return f"choose another {option}"


def _nearest_existing(out: Path, where: str) -> tuple[Path, list[str]]:
    """The path itself or the nearest folder above it that exists, and the names below it that
    do not exist yet (nearest first). A file above the path is reported here."""
    if "\0" in str(out):
        shown = where.replace("\0", "\\0")
        raise UsageError(f"{shown}: the name holds a NUL character")
    if len(os.fsencode(os.path.abspath(out))) >= PATH_MAX:
        raise UsageError(f"{_short(where)}: the path is too long ({len(os.fsencode(os.path.abspath(out)))} "
                         f"bytes; the file system allows {PATH_MAX - 1})")
    for name in out.parts:
        if len(os.fsencode(name)) > NAME_MAX:
            _too_long(where, name, NAME_MAX)
    missing: list[str] = []
    current = out
    while True:
        try:
            os.stat(current)
            break
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise UsageError(f"{_short(where)}: a name in the path is too long for the file system; "
                                 f"choose a shorter name") from None
            raise UsageError(f"{where}: cannot look at {current}: {_explain(exc, current)}; "
                             f"choose another {where.split()[0]}") from None
        if current.parent == current:
            break
        missing.insert(0, current.name)
        current = current.parent
    limit = _name_max(current)
    for name in missing:
        if len(os.fsencode(name)) > limit:
            _too_long(where, name, limit)
    if missing and not current.is_dir():
        raise UsageError(f"{where}: {current} is a file, not a folder; choose another {where.split()[0]}")
    return current, missing


def _too_long(where: str, name: str, limit: int) -> None:
    raise UsageError(f"{_short(where)}: the name {name[:24]}... is too long ({len(os.fsencode(name))} bytes; "
                     f"the file system allows {limit}); choose a shorter name")


def _short(where: str) -> str:
    """An option and a path of thousands of characters, cut to fit a line."""
    return where if len(where) <= 120 else f"{where[:100]}...{where[-16:]}"


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder if folder.is_dir() else folder.parent, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def _check_folder(folder: Path, where: str, option: str, created: Path | None, size: int) -> None:
    """``folder`` exists and is a folder: can it take a new file (or the new folder ``created``)?"""
    probe = folder / f".ganforge-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno == errno.ENOENT:  # procfs and sysfs answer this for a new name
            reason = f"{folder} does not accept new files (a virtual file system)"
        else:
            reason = _explain(exc, folder)
        made = f"cannot create the folder {created}: " if created is not None else ""
        raise UsageError(f"{where}: {made}{reason}; {_hint(exc, option)}") from None
    try:
        os.write(fd, b"\0")  # a full tmpfs or ext4 refuses even one byte
    except OSError as exc:
        raise UsageError(f"{where}: {_explain(exc, folder)}; {_hint(exc, option)}") from None
    finally:
        os.close(fd)
        try:
            probe.unlink()
        except OSError:
            pass
    _require_space(folder, where, option, size)


def _require_space(folder: Path, where: str, option: str, size: int) -> None:
    if size <= 0:
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < size:
        raise UsageError(f"{where}: no space left for it on the file system of {folder} (needs about "
                         f"{_size(size)}, {_size(free)} free); free space or choose another {option}")


def _full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 64 * 1024
    except OSError:
        return False


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"
