"""Publishing an export folder atomically, and cleaning up after an interrupted export.

`export` writes everything into a hidden staging folder `.NAME.PID.XXXX.tmp` beside `out`,
then `publish` swaps it in with two renames: `out` -> `.NAME.old-PID`, staging -> `out`.
A process killed in between leaves
- staging folders (any time before the swap): `clean_stale` removes those whose process
  is gone (their name carries its PID) at the start of the next export to that place;
- only `.NAME.old-PID` (between the two renames): `recover` renames it back to `out`, so the
  previous export is what `load` finds and what the next export replaces.
Published folders get the user's umask permissions (tempfile.mkdtemp makes them 0700).
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from pathlib import Path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _pid_of(name: str, out_name: str) -> int | None:
    """The PID in a staging (`.NAME.PID.XXXX.tmp`) or old (`.NAME.old-PID`) folder name,
    0 for a staging folder of the older, PID-less form, None for anything else."""
    prefix = f".{out_name}."
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    if m := re.fullmatch(r"old-(\d+)", rest):
        return int(m.group(1))
    if rest.endswith(".tmp"):
        m = re.match(r"(\d+)\.", rest)
        return int(m.group(1)) if m else 0
    return None


def recover(out: Path) -> None:
    """Put back `out` from `.NAME.old-PID` when a publish died between its two renames."""
    out = Path(out)
    if out.exists() or not out.parent.is_dir():
        return
    for p in sorted(out.parent.glob(f".{glob.escape(out.name)}.old-*")):
        pid = _pid_of(p.name, out.name)
        if pid is not None and not _alive(pid):
            os.replace(p, out)
            return


def clean_stale(out: Path) -> None:
    """Remove staging and old folders of `out` left by export processes that are gone
    (after `recover`, so an old folder that is the only copy is kept)."""
    out = Path(out)
    recover(out)
    if not out.parent.is_dir():
        return
    for p in out.parent.glob(f".{glob.escape(out.name)}.*"):
        pid = _pid_of(p.name, out.name)
        if pid is not None and p.is_dir() and not (pid and _alive(pid)):
            shutil.rmtree(p, ignore_errors=True)


def staging_dir(out: Path) -> Path:
    """A new hidden staging folder beside `out`, named with this process's PID."""
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".tmp",
                                 dir=out.parent))


def publish(staging: Path, out: Path) -> None:
    """Swap the complete staging folder into place (two renames; old export removed)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would hide the model from others
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
