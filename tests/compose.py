"""docker-compose.yaml as data, for the test that checks it and the one that runs its topology
natively: services, their commands, environments and health checks, with `${VAR}` interpolated
the way Compose does it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.conftest import REPO

COMPOSE_FILE = REPO / "docker-compose.yaml"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $$ is a literal $
_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


class MissingVariable(KeyError):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution of one string value (strict: `:?` and `?` raise)."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        have = name in env
        val = env.get(name, "")
        if op == ":-":
            return val if val else arg
        if op == "-":
            return val if have else arg
        if op in (":?", "?") and (not have or (op == ":?" and not val)):
            raise MissingVariable(f"{name}: {arg}")
        return val

    return _VAR.sub(sub, value)


def resolve(node, env: dict[str, str]):
    """``node`` (a parsed compose value) with every string interpolated."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    return node


def load(path: Path = COMPOSE_FILE) -> dict:
    """The compose file parsed, anchors and `<<` merges applied (YAML does both), not interpolated."""
    return yaml.safe_load(path.read_text())


def env_example(path: Path = REPO / ".env.example") -> dict[str, str]:
    """KEY=value lines of .env.example (comments and blank lines skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def environment(service: dict) -> dict[str, str]:
    """A service's environment as a mapping (compose allows a mapping or KEY=value items)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}
