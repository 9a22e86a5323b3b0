"""The CPU a benchmark ran on, as its report names it (`lscpu`'s model name)."""

from __future__ import annotations

import platform
import subprocess


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        out = ""
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line]
    return names[0] if names else platform.processor() or "unknown CPU"
