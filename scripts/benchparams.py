"""The params file a benchmark script starts from, checked before it does any work.

Every benchmark generates the log it measures, so it needs a params file whose data section
generates that log. A project's own params.yaml after `mtl init --from FILE` reads the user's
files instead, and a benchmark run on it used to die later with a KeyError traceback; here it
stops at once and says which file to pass. Config errors come out as the one-line messages
`mtl` prints, not tracebacks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# What to pass instead, per generated log: the file that ships with the project for it.
SHIPPED = {
    "impressions": "the shipped params.yaml (`git show HEAD:params.yaml > /tmp/shipped.yaml`, "
                   "then --params /tmp/shipped.yaml)",
    "supply_chain": "configs/supply_chain.yaml (the supply-chain preset)",
}


def fail(message: str) -> None:
    raise SystemExit(f"error: {message}")


def add_set_argument(parser, example: str) -> None:
    """The --set KEY=VALUE option of the benchmarks that start from a preset."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a setting of the preset (YAML value), e.g. --set {example}")


def set_overrides(pairs: list[str]) -> dict[str, Any]:
    """--set's KEY=VALUE pairs as dotted overrides (each value read as YAML)."""
    import yaml

    if any("=" not in kv for kv in pairs):
        fail(f"--set takes KEY=VALUE, got {[kv for kv in pairs if '=' not in kv]}")
    return {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in pairs)}


def generated_kind(raw: dict) -> str:
    """The synthetic log a raw params mapping generates, or where it reads files from instead."""
    data = raw.get("data") or {}
    source = data.get("source", "synthetic")
    if source != "synthetic":
        return f"the files at {source!r}"
    return (data.get("synthetic") or {}).get("kind", "impressions")


def load(params: str | Path, overrides: dict[str, Any] | None = None, *, kind: str = "impressions",
         script: str | None = None):
    """The validated Config of ``params`` with ``overrides``; exits with a clear message when the
    file is missing, invalid, or does not generate the ``kind`` of log the benchmark measures."""
    from mtl.config import ConfigError, apply_overrides, parse_config, read_raw

    script = script or Path(sys.argv[0]).name
    try:
        raw = read_raw(params)
    except ConfigError as err:
        fail(str(err))
    have = generated_kind(raw)
    if have != kind:
        what = have if have.startswith("the files") else f"the generated {have} log"
        fail(f"{script} measures the generated {kind} log, and {params} reads {what}. "
             f"Pass --params with {SHIPPED[kind]}.")
    try:
        return parse_config(apply_overrides(raw, overrides or {}), source=str(params))
    except ConfigError as err:
        fail(str(err))


def log_key(cfg) -> str:
    """A short key of the generator settings: a cached log is reused only by the same settings."""
    import hashlib

    return hashlib.md5(cfg.data.synthetic.model_dump_json().encode()).hexdigest()[:8]


def add_argument(parser, default: Path = ROOT / "params.yaml") -> None:
    """The --params option every benchmark takes."""
    parser.add_argument("--params", type=Path, default=default,
                        help=f"the params file to start from (default: {default.relative_to(ROOT)})")
