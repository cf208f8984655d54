"""konbini_common is the shared floor: every package may import it, it imports none of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import konbini_common

PACKAGE = Path(konbini_common.__file__).parent


def test_the_shared_package_needs_only_the_standard_library() -> None:
    """Importing every module of konbini_common loads no project package and nothing from
    outside the standard library (so cardreader, certserver and kiosk can all depend on it)."""
    modules = sorted(f"konbini_common.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    probe = (
        "import sys\n"
        f"before = set(sys.modules)\n"
        f"for name in {modules!r}: __import__(name)\n"
        "loaded = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print('\\n'.join(sorted(m for m in loaded if m != 'konbini_common'"
        " and m not in sys.stdlib_module_names and not m.startswith('_'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert modules, "konbini_common has no modules"
    assert result.stdout.split() == []
