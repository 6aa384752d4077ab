"""The retention policy's rules (mtl/maintenance/policy.py), on made-up registries: what each
version keeps, which data that pins, and which dated files have expired."""

import pytest

from mtl.config import ConfigError, RetentionConfig, load_config
from mtl.maintenance.policy import DAY, Version, classify, day_of, day_start, kept_data, quarantined_at, stale

NOW = 1_000 * DAY


def _v(n, age_days, decision="rejected", aliases=(), data=None):
    return Version(n, NOW - age_days * DAY, decision, frozenset(aliases), f"run{n}", f"m-{n}",
                   data or {"01_raw": f"raw{n}.dir", "03_features": f"feat{n}.dir"})


# A year of weekly versions: promoted every fourth week up to week 40, rejected otherwise; 40 the
# champion, 36 the previous one; 12 was champion until it was rolled back.
HISTORY = [_v(n, (52 - n) * 7, "promoted" if n % 4 == 0 and n < 40 else "rejected")
           for n in range(1, 53) if n not in (36, 40, 12)]
HISTORY += [_v(40, 12 * 7, "promoted", ["champion"]), _v(36, 16 * 7, "promoted", ["previous_champion"]),
            _v(12, 40 * 7, "rolled_back")]


def test_the_champion_the_previous_and_the_newest_are_kept_whole():
    classes = classify(HISTORY, RetentionConfig(versions=3, champions=3, candidate_days=14), NOW)
    assert {n for n, c in classes.items() if c == "full"} == {40, 36, 32, 50, 51, 52}  # 32: third newest champion
    lineage = {n for n, c in classes.items() if c == "lineage"}
    assert lineage == {n for n in range(4, 32, 4)} | {12}  # every older champion, the rolled-back one too
    assert all(c == "expired" for n, c in classes.items() if n not in lineage and n not in {40, 36, 32, 50, 51, 52})


def test_young_versions_are_kept_whatever_their_decision():
    classes = classify(HISTORY, RetentionConfig(versions=0, champions=2, candidate_days=30), NOW)
    assert {n for n, c in classes.items() if c == "full"} == {40, 36, 48, 49, 50, 51, 52}  # 48-52: under 30 days


def test_the_champion_and_the_previous_are_kept_even_with_nothing_else():
    versions = [_v(1, 400, "promoted", ["previous_champion"]), _v(2, 300, "rejected"),
                _v(3, 200, "promoted", ["champion"]), _v(4, 100, None)]
    classes = classify(versions, RetentionConfig(versions=0, champions=2, candidate_days=0), NOW)
    assert classes == {1: "full", 2: "expired", 3: "full", 4: "expired"}


def test_kept_data_is_every_layer_of_a_full_version_and_the_lineage_layers_of_an_old_champion():
    versions = [_v(1, 400, "promoted", data={"01_raw": "r1", "03_features": "f1", "04_model": "m1"}),
                _v(2, 300, "rejected", data={"01_raw": "r2", "03_features": "f2"}),
                _v(3, 200, "promoted", ["champion"], data={"01_raw": "r3", "03_features": "f3", "04_model": "m3"})]
    classes = {1: "lineage", 2: "expired", 3: "full"}
    assert kept_data(versions, classes) == {"r1", "f1", "r3", "f3", "m3"}


def test_at_least_two_champions_are_kept():
    with pytest.raises(ValueError, match="champions"):
        RetentionConfig(champions=1)
    with pytest.raises(ConfigError, match="retention"):
        load_config("params.yaml", {"retention.score_days": -1})


def test_dated_files():
    assert day_of("data/07_scores/{day}.parquet", "data/07_scores/2026-11-29.parquet") == "2026-11-29"
    assert day_of("data/07_scores/{day}.parquet", "data/07_scores/2026-11-29.parquet.json") == "2026-11-29"
    assert day_of("data/07_scores/{day}.parquet", "data/07_scores/notes.parquet") is None
    assert day_of("out/{day}/scores.csv", "out/2026-01-02/scores.csv") == "2026-01-02"
    # a day's scores expire once the whole day is score_days behind
    end_of_day = day_start("2026-11-29") + DAY
    assert not stale(end_of_day, 7, end_of_day + 6.9 * DAY) and stale(end_of_day, 7, end_of_day + 7 * DAY)
    assert quarantined_at("20261206T150822Z") == quarantined_at("20261206T150822Z-2") is not None
    assert quarantined_at("notes") is None and quarantined_at(".gc-20261206T150822Z") is None
