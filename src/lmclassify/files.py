"""Writing files and folders so that a reader never sees one half-written.

A file is written beside its target under a hidden name and renamed over it; a folder is
built elsewhere and swapped in, the old one removed only after the swap.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def write_text_atomically(path: Path, text: str) -> None:
    path = Path(path)
    staging = path.with_name(f".{path.name}.partial-{os.getpid()}")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def write_json_atomically(path: Path, data) -> None:
    write_text_atomically(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def replace_directory(new: Path, old: Path) -> None:
    """Rename the finished folder `new` to `old`, replacing what was there only at the end."""
    if old.exists():
        retired = old.with_name(f".{old.name}.old-{os.getpid()}")
        old.rename(retired)
        new.rename(old)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        new.rename(old)
