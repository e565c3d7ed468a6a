"""Files to read: the user's path checked, folders walked (hidden files, symlinks), a file read as
text within :data:`MAX_FILE_BYTES` (every refusal a :class:`ParseIssue`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from queries.errors import InvalidInput

from .model import ParseIssue
from .values import one_line

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Files larger than this are skipped with a :class:`ParseIssue`."""


def check_input(path: Path | str, *, file_only: bool) -> Path:
    """Validate the user-given path; raise :class:`InvalidInput` naming it if unusable."""
    p = Path(path).expanduser()
    shown = one_line(str(p), 500)
    try:
        exists = p.exists()
        is_file = p.is_file()
        is_dir = p.is_dir()
    except OSError as exc:
        raise InvalidInput(f"cannot access inventory path {shown}: {exc.strerror}") from None
    if not exists:
        raise InvalidInput(f"inventory path does not exist: {shown}")
    if file_only and is_dir:
        raise InvalidInput(f"inventory path is a directory, expected a file: {shown}")
    if not (is_file or (is_dir and not file_only)):
        raise InvalidInput(f"inventory path is not a regular file or directory: {shown}")
    return p.resolve()


def walk_files(
    root: Path, suffixes: tuple[str, ...], issues: list[ParseIssue]
) -> list[tuple[Path, str]]:
    """Files to read under ``root`` as ``(path, path relative to root)``, in sorted order.

    A single file is returned as is. In a folder: hidden files and folders (``.git``, ...) are
    skipped; a symlink whose target lies outside the root is skipped with an issue; a symlinked
    folder inside the root is not descended (its target is walked in its own right); a symlinked
    file inside the root is read only if its target is not read anyway (then under the link's
    name); an unreadable folder is an issue.
    """
    if root.is_file():
        return [(root, root.name)]
    out: list[tuple[Path, str]] = []
    links: list[tuple[Path, str, Path]] = []

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename).relative_to(root).as_posix() if exc.filename else "."
        issues.append(ParseIssue(where, f"cannot read folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        kept = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            full = here / d
            if full.is_symlink():
                if not _inside(full, root):
                    issues.append(
                        ParseIssue(prefix + d, "symlink to a folder outside the imported root")
                    )
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(suffixes):
                continue
            full = here / name
            if full.is_symlink():
                if _inside(full, root):
                    links.append((full, prefix + name, full.resolve()))
                else:
                    issues.append(
                        ParseIssue(prefix + name, "symlink to a file outside the imported root")
                    )
                continue
            out.append((full, prefix + name))
    seen = {path for path, _ in out}
    for full, rel, target in links:
        if target not in seen:
            seen.add(target)
            out.append((full, rel))
    return out


def _inside(link: Path, root: Path) -> bool:
    try:
        return link.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # symlink loop
        return False


def read_text(path: Path, rel: str, issues: list[ParseIssue]) -> str | None:
    """The file's text, or ``None`` after recording why it cannot be used."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            issues.append(ParseIssue(rel, "not a regular file"))
            return None
        if st.st_size > MAX_FILE_BYTES:
            issues.append(ParseIssue(rel, f"skipped: {st.st_size} bytes, over the 5 MB limit"))
            return None
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        issues.append(ParseIssue(rel, f"cannot read: {exc.strerror or exc}"))
        return None
    if len(data) > MAX_FILE_BYTES:
        issues.append(ParseIssue(rel, "skipped: over the 5 MB limit"))
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.append(
            ParseIssue(
                rel,
                f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}",
            )
        )
        return None
    if "\x00" in text:
        issues.append(ParseIssue(rel, "binary file (contains NUL bytes)"))
        return None
    if not text.strip():
        issues.append(ParseIssue(rel, "empty file"))
        return None
    return text


def dir_parts(root: Path, rel: str) -> set[str]:
    """Lower-cased folder names of a file: the folders under the root and, when the root is a
    folder, the root's own name (importing ``sigma/deprecated`` itself marks its rules)."""
    parts = {p.lower() for p in rel.split("/")[:-1]}
    if rel != root.name or "/" in rel or not root.is_file():
        parts.add(root.name.lower())
    return parts
