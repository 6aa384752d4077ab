"""Security basics: no secrets in the repository, and no model, checkpoint or transform load that
could run code from the file (no unpickling of what a file says)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

# What a leaked credential looks like. Placeholders (CHANGE_ME, ${VAR}, AKIA...) do not match.
SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN (RSA |EC |DSA |OPENSSH |PGP )?PRIVATE KEY( BLOCK)?-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Fernet key or secret assigned": re.compile(
        r"(?i)\b[\w.]*(password|passwd|secret|token|fernet_key|api_key|access_key)[\w.]*\s*[:=]\s*"
        r"[\"']?(?!CHANGE_ME|\$\{|\$\(|<|None|null|\"|')[A-Za-z0-9+/=_\-]{12,}"),
}


def find_secrets(text: str) -> list[str]:
    return [f"{name}: {m.group(0)[:40]}" for name, pattern in SECRET_PATTERNS.items() for m in pattern.finditer(text)]


def _tracked_text_files() -> list[Path]:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    out = []
    for rel in files:
        path = REPO / rel
        if path.is_file() and path.stat().st_size < 2_000_000:
            try:
                path.read_text()
            except UnicodeDecodeError:
                continue  # binary
            out.append(path)
    return out


def test_no_secrets_in_the_repository():
    found = {str(p.relative_to(REPO)): hits for p in _tracked_text_files() if (hits := find_secrets(p.read_text()))}
    assert found == {}, f"credentials in the repository (use .env / environment variables): {found}"


# Written in pieces, so that this file itself passes the scan.
@pytest.mark.parametrize("leak", [
    "aws_access_key_id = " + "AKIA" + "IOSFODNN7EXAMPLE",
    "-----BEGIN OPENSSH " + "PRIVATE KEY-----",
    "POSTGRES_PASSWORD" + "=hunter2hunter2hunter2",
    "AIRFLOW__CORE__FERNET_KEY" + ": 'ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg='",
    "token: " + "ghp_" + "0123456789abcdefghijklmnopqrstuvwxyzAB",
])
def test_the_scan_catches_a_leak(leak):
    assert find_secrets(f"some: config\n{leak}\n")


def test_placeholders_are_not_secrets():
    ok = "POSTGRES_PASSWORD=CHANGE_ME\nAWS_SECRET_ACCESS_KEY: ${MINIO_ROOT_PASSWORD}\nkey AKIA...\npassword: null\n"
    assert find_secrets(ok) == []


# -- loading never unpickles ----------------------------------------------------------------------

UNSAFE_LOADS = re.compile(r"pickle\.loads?\(|joblib\.load\(|cloudpickle|\bdill\b|read_pickle\(|allow_pickle\s*=\s*True")


def test_the_code_never_unpickles():
    """Every torch.load says weights_only=True; nothing else that unpickles is called."""
    for path in [*(REPO / "mtl").rglob("*.py"), *(REPO / "dags").glob("*.py"), *(REPO / "plugins").glob("*.py")]:
        text = path.read_text()
        assert not UNSAFE_LOADS.search(text), f"{path}: unpickles"
        for call in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in call.group(1), f"{path}: torch.load without weights_only=True"


class _Payload:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_malicious_model_or_checkpoint_is_refused_without_running_it(tmp_path):
    import torch

    from mtl.data.features import Transform
    from mtl.training.checkpoint import load_model, load_training_state

    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pt"
    torch.save({"format_version": 1, "state_dict": _Payload(marker)}, evil)
    with pytest.raises(ValueError, match="not a readable model file"):
        load_model(evil)
    assert load_training_state(evil, fingerprint="x") is None  # not resumed from
    with pytest.raises(ValueError):
        Transform.load(evil)  # JSON only
    assert not marker.exists(), "loading ran code from the file"
