"""requirements.lock against pyproject.toml: every direct pin is in the lock at the same version,
so a pin changed without `bash scripts/lock.sh` fails here, not in a user's install."""

import re
import tomllib

from tests.conftest import REPO


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def test_every_pin_of_pyproject_is_locked_at_its_version():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    lock = dict(line.split("==", 1) for line in (REPO / "requirements.lock").read_text().split())
    lock = {_name(n): v for n, v in lock.items()}
    assert len(lock) > 100
    stale = []
    for req in wanted:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?==(\S+)", req)
        assert m, f"pyproject.toml: {req!r} is not pinned with =="
        if lock.get(_name(m.group(1))) != m.group(3):
            stale.append(f"{req} (lock: {lock.get(_name(m.group(1)))})")
    assert not stale, f"requirements.lock is stale for {stale}: run `bash scripts/lock.sh` and commit it"


def test_the_lock_is_in_the_form_lock_sh_writes():
    lines = (REPO / "requirements.lock").read_text().splitlines()
    assert lines == sorted(lines) and all(line == _name(line.split("==")[0]) + "==" + line.split("==")[1]
                                          for line in lines)
