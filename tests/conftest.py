"""Test-wide set-up: ``tests/conf`` (tiny overrides per domain, shared fixtures) is importable from every folder."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "conf"))
