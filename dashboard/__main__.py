"""`python -m dashboard [streamlit options]`: start the dashboard with the project's safe settings,
from any folder.

Streamlit reads `.streamlit/config.toml` only from the folder it is started in (and the user's
home), so `cd /tmp && streamlit run .../app.py` would listen on every network interface and send
usage statistics. This launcher passes every setting of the project's `.streamlit/config.toml` as
command-line options instead, on top of a floor that always holds (localhost only, no usage
statistics). Options given after `python -m dashboard` still win, e.g. `--server.port 8600`; the
app warns on its pages when it finds itself reachable beyond this machine.
"""
from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

APP = Path(__file__).resolve().parent / "server.py"   # app.py with the live view's route (dashboard/server.py)
CONFIG = Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml"
SAFE_FLOOR = {"server.address": "localhost", "server.headless": True, "browser.gatherUsageStats": False}


def streamlit_options(config_path: Path = CONFIG) -> dict[str, object]:
    """The safe floor, then every `section.option` of the project's config file."""
    options: dict[str, object] = dict(SAFE_FLOOR)
    if config_path.is_file():
        with open(config_path, "rb") as fh:
            for section, values in tomllib.load(fh).items():
                for key, value in values.items():
                    options[f"{section}.{key}"] = value
    for key, value in SAFE_FLOOR.items():  # the file may add settings, never loosen these two
        if key in ("server.address", "browser.gatherUsageStats"):
            options[key] = value
    return options


def command(argv: list[str]) -> list[str]:
    flags: list[str] = []
    for key, value in streamlit_options().items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        flags += [f"--{key}", text]
    return [sys.executable, "-m", "streamlit", "run", str(APP), *flags, *argv]


def main(argv: list[str] | None = None) -> None:
    cmd = command(list(sys.argv[1:] if argv is None else argv))
    os.execv(cmd[0], cmd)  # become the server: signals and the exit code are Streamlit's own


if __name__ == "__main__":
    main()
