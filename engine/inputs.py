"""Which files a worker may read, and where it may write: input roots, output names.

Anyone who can write to the jobs collection can name a file for a worker to read
(``parameters.path``). So when input roots are configured (``--input-root DIR``,
``JOBTUI_INPUT_ROOTS``, YAML ``jobtui.input_roots``) a worker reads a file only if it
lies under one of them; otherwise the job fails with ``PATH_NOT_ALLOWED`` before a
byte is read. Without roots everything is allowed (``jobtui doctor`` warns about that).

The check is made on the opened file, never on a name that is opened later: the
file is opened (following whatever links are there *now*), and where the kernel says
the open file lives (``/proc/self/fd/N``) must be under a root. ``open_input`` then
keeps the file open and hands readers ``read_path``, a name for exactly that open
file (``/proc/PID/fd/N``, which the CPU worker processes can open too): swapping a
folder inside the root for a symlink, or renaming files, after the check changes
nothing about what is read. ``check_input_path`` (for handlers that reopen by name)
makes the same check but cannot pin what is read afterwards.

Hard links: a second name inside a root for a file elsewhere passes a location
check (both names are the same file). ``input_refuse_hard_links`` refuses any input
with more than one link; it is off by default, since hard-linking a file needs
write access inside the root and, with Linux's ``protected_hardlinks`` (the default
on common distributions), ownership of or read-write access to that file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import PlainValidator

from jobtui.engine.errors import JobFailed
from jobtui.engine.models import ErrorCode

_PROC_FD = "/proc/self/fd"


def _any_name(value: Any) -> str:
    """A file name as Python holds it: a ``str`` whose undecodable bytes (a name from a
    non-UTF-8 file system) are surrogate escapes. pydantic's ``str`` refuses those."""
    if not isinstance(value, str) or not value:
        raise ValueError("a non-empty file path is required")
    return value


#: The type of a job parameter that names an input file: any name the file system
#: can hold, UTF-8 or not (``path: InputPath`` in a handler's parameters model).
InputPath = Annotated[str, PlainValidator(_any_name, json_schema_input_type=str)]


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives (Windows) or mixed absolute/relative
        return False


class InputFile:
    """An input file opened and checked once. ``path``: where it really is (for output
    names and messages). ``read_path``: what readers open (the pinned file when input
    roots apply, else ``path``). ``close()`` when the job is done with it."""

    def __init__(self, path: Path, fd: int | None = None) -> None:
        self.path = path
        self.fd = fd
        pinned = fd is not None and os.path.isdir(_PROC_FD)
        self.read_path = f"/proc/{os.getpid()}/fd/{fd}" if pinned else str(path)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _refused(path: str, real: str, roots: list[str], why: str = "") -> JobFailed:
    shown = ", ".join(roots)
    return JobFailed(
        ErrorCode.PATH_NOT_ALLOWED,
        why or f"{path} is outside the input roots ({shown}); this worker reads nothing else",
        {"path": path, "resolved": real, "input_roots": roots},
    )


def open_input(
    path: str, roots: Sequence[Path | str], *, refuse_hard_links: bool = False
) -> InputFile:
    """Open ``path`` for a job and check the open file against ``roots`` (see the
    module doc); ``JobFailed("PATH_NOT_ALLOWED")`` when it is outside them. With no
    roots: no check, and ``path`` is the absolute name as given (symlinks kept, so
    output names follow the name the job gave). A path that cannot be opened is judged
    by its resolved name, so a refused job does not reveal whether a file exists;
    inside the roots it fails ``FILE_NOT_FOUND`` or ``FILE_UNREADABLE`` here."""
    try:
        if not roots:
            return _open_unchecked(Path(os.path.abspath(os.path.expanduser(path))))
        real_roots = [_real(r) for r in roots]
        absolute = os.path.abspath(os.path.expanduser(path))
        _real(absolute)  # an embedded NUL raises here, not half-way below
    except (ValueError, OSError) as exc:  # an embedded NUL byte, an unreadable cwd
        raise JobFailed(
            ErrorCode.PATH_NOT_ALLOWED, f"unusable path {path!r}: {exc}", {"path": path}
        ) from None
    try:
        fd = os.open(absolute, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        # Missing or unreadable: judged by name (never handed on to be read by name).
        real = _real(absolute)
        if not any(_inside(real, root) for root in real_roots):
            raise _refused(path, real, real_roots) from None
        if isinstance(exc, FileNotFoundError | NotADirectoryError):
            raise JobFailed(
                ErrorCode.FILE_NOT_FOUND, f"no such file: {path}", {"path": path}
            ) from None
        raise JobFailed(
            ErrorCode.FILE_UNREADABLE, f"cannot read {path}: {exc.strerror}", {"path": path}
        ) from None
    try:
        real = _opened_at(fd, absolute)
        if not any(_inside(real, root) for root in real_roots):
            raise _refused(path, real, real_roots)
        st = os.fstat(fd)
        if refuse_hard_links and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            raise _refused(
                path,
                real,
                real_roots,
                f"{path} has {st.st_nlink} hard links; with input_refuse_hard_links this "
                "worker reads no file that may also live outside the input roots",
            )
    except BaseException:
        os.close(fd)
        raise
    return InputFile(Path(real), fd)


def _open_unchecked(path: Path) -> InputFile:
    """No roots: pinned all the same when it opens (a file name that is not UTF-8 can
    then be read by libraries that take only UTF-8 names, through /proc/PID/fd/N)."""
    try:
        return InputFile(path, os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK))
    except OSError:
        return InputFile(path)  # the reader says what is wrong with it


def _opened_at(fd: int, fallback: str) -> str:
    """Where the open file lives, as the kernel says (not what the name means now)."""
    try:
        target = os.readlink(f"{_PROC_FD}/{fd}")
    except OSError:  # no /proc: resolve the name (the best a portable check can do)
        return _real(fallback)
    return target.removesuffix(" (deleted)")


def check_input_path(path: str, roots: Sequence[Path | str]) -> Path:
    """The path a worker may read for ``path``, or ``JobFailed("PATH_NOT_ALLOWED")``:
    ``open_input``'s check (made on the opened file), for a handler that reads by
    name. Prefer ``ctx.open_input``: it also pins what is read afterwards."""
    f = open_input(path, roots)
    f.close()
    return f.path


def roots_of(settings: Any) -> list[Path]:
    """The input roots from a handler's ``ctx.settings`` (a dict) or a ``Settings``."""
    if isinstance(settings, dict):
        value = settings.get("input_roots")
    else:
        value = getattr(settings, "input_roots", None)
    return [Path(r) for r in value or ()]


def output_dir_for(chosen: str, settings: Any) -> Path:
    """Where a job whose enqueue chose the output folder ``chosen`` writes.

    Without input roots, anywhere this worker may write (as with ``--output``). With
    input roots (a worker that reads only what it was told it may), the folder must
    lie under one of them or under the worker's own ``output_dir``, else
    ``PATH_NOT_ALLOWED``: whoever can write a job must not steer this worker's writes
    anywhere else either.
    """
    path = Path(os.path.abspath(os.path.expanduser(chosen)))
    roots = roots_of(settings)
    if not roots:
        return path
    own = getattr(settings, "output_dir", None)
    allowed = [_real(r) for r in [*roots, *([own] if own is not None else [])]]
    real = _real(path)
    if any(_inside(real, root) for root in allowed):
        return Path(real)
    raise JobFailed(
        ErrorCode.PATH_NOT_ALLOWED,
        f"output folder {chosen} is outside the input roots and this worker's output "
        f"folder ({', '.join(allowed)})",
        {"output_dir": chosen, "resolved": real, "allowed": allowed},
    )


def safe_name(name: str, fallback: str = "document") -> str:
    """``name`` usable as one file name inside the output directory: no separators,
    no NUL, not ``.`` or ``..``. Output paths are ``out_dir / safe_name(...)``, so a
    crafted input name cannot put a file anywhere else."""
    for bad in {"/", "\\", "\0", os.sep, os.altsep or "/"}:
        name = name.replace(bad, "_")
    return fallback if name.strip(".") == "" else name
