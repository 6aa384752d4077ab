"""AliExpress (cross-country search logs): one folder per country, each with train.csv and test.csv."""

from __future__ import annotations

import re
from pathlib import Path

from mtl.data.ingest.adapters.base import SourceError, short_list, split_of, stem, tokens
from mtl.data.ingest.adapters.layout import CsvLayout, common_parent

COUNTRY_COLUMN = "country"
# With one set of files and no country in their names, every row is in this scenario.
UNKNOWN_COUNTRY = "all"
IDS = ("search_id", *(f"categorical_{i}" for i in range(1, 17)))
DENSE = tuple(f"numerical_{i}" for i in range(1, 64))


def country_of(path: Path, top: Path) -> str | None:
    """NL from AliExpress_NL/train.csv, or from a two-letter word (nl_train.csv, NL/train.csv).

    Only the file's name and its folders up to ``top`` (the common folder of all files) are
    looked at, so nothing above the data folder (a user's home directory) is mistaken for one.
    """
    names = [stem(path)] + [p.name for p in path.parents if p == top or top in p.parents]
    for name in names:
        match = re.fullmatch(r"(?i)aliexpress[ _-]?([a-z]{2})", name)
        if match:
            return match.group(1).upper()
    for name in names:
        two = [t for t in tokens(name) if len(t) == 2 and t.isalpha()]
        if len(two) == 1:
            return two[0].upper()
    return None


class AliExpress(CsvLayout):
    """The public AliExpress dataset (also FuxiCTR's copy, which has the same header).

    Every row gets a ``country`` column, the scenario: a multi-country model is judged per
    country. Declare it in data.schema (scenario: country) to keep it.
    """

    name = "aliexpress"

    ids = IDS
    dense = DENSE
    labels = ("click", "conversion")
    columns_doc = "search_id, categorical_1..categorical_16, numerical_1..numerical_63, click, conversion"
    expects = ("a folder with one folder per country holding train.csv and test.csv (AliExpress_NL/train.csv, "
               "AliExpress_NL/test.csv, AliExpress_US/...), or a single such country folder")

    def files(self, path: Path) -> list[Path]:
        found = super().files(path)
        countries = self._countries(found)
        by_country: dict[str | None, list[Path]] = {}
        for f, c in countries.items():
            by_country.setdefault(c, []).append(f)
        if len(by_country) > 1 and None in by_country:
            raise SourceError(
                f"aliexpress: cannot tell the country of {short_list(str(f) for f in by_country[None])}. "
                f"Expected {self.expects}."
            )
        top = common_parent(found)
        for country, files in by_country.items():
            missing = [s for s in self.required_splits if s not in {split_of(f, top) for f in files}]
            if missing:
                raise SourceError(
                    f"aliexpress: country {country or UNKNOWN_COUNTRY} has no {' or '.join(missing)} file "
                    f"(found {short_list(str(f.relative_to(top)) for f in files)} under {top}). Expected {self.expects}."
                )
        return found

    def extra_columns(self, files: list[Path]) -> dict[Path, dict[str, str]]:
        return {f: {COUNTRY_COLUMN: c or UNKNOWN_COUNTRY} for f, c in self._countries(files).items()}

    def _countries(self, files: list[Path]) -> dict[Path, str | None]:
        top = common_parent(files)
        return {f: country_of(f, top) for f in files}
