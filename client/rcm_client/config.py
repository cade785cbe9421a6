"""Where ``rcm login`` keeps its session: ``~/.config/rcm/credentials.json``, or the file
``RCM_CONFIG`` names. It holds the URL and a refresh token (never the password) or an API
key, so it is readable by its owner alone (0600, in a 0700 directory when we create it)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


def credentials_path() -> Path:
    configured = os.environ.get("RCM_CONFIG")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "rcm" / "credentials.json"


def credentials_load(path: Path | None = None) -> dict | None:
    path = path or credentials_path()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def credentials_save(credentials: dict, path: Path | None = None) -> Path:
    """Write the file whole or not at all: a temporary file (mkstemp makes it 0600 from its
    first byte, never the umask's 0644 for an instant), then renamed over the old one."""
    path = path or credentials_path()
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".credentials-")
    try:
        with os.fdopen(descriptor, "w") as output:
            json.dump(credentials, output, indent=2)
            output.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def credentials_delete(path: Path | None = None) -> bool:
    path = path or credentials_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
