"""Write tests/data/samples/m5/: a tiny copy of the Walmart M5 layout (python tests/data/samples/make_m5.py).

6 items x 2 stores (CA_1, TX_1) x 60 days, d_1 = 2011-01-29, with the real calendar of those days:
Walmart weeks from 11101 (Saturday to Friday), the events of February and March 2011 and the
SNAP days of each state (CA: the 1st-10th of the month; TX and WI: their own ten days). Sales are
seeded Poisson counts. Two series carry the cases the adapter must handle: FOODS_1_001 in CA_1 is
not yet listed in weeks 11101-11103 (no price, no sales), and HOUSEHOLD_1_001 in TX_1 has no
price in week 11105 (not on sale: no sales that week).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).parent / "m5"
DAYS = 60
STORES = ("CA_1", "TX_1")
ITEMS = {"HOBBIES_1_001": 8.78, "HOBBIES_1_002": 3.97, "HOUSEHOLD_1_001": 5.94, "HOUSEHOLD_2_001": 11.88,
         "FOODS_1_001": 2.0, "FOODS_3_001": 2.28}
EVENTS = {"2011-02-06": ("SuperBowl", "Sporting"), "2011-02-14": ("ValentinesDay", "Cultural"),
          "2011-02-21": ("PresidentsDay", "National"), "2011-03-09": ("LentStart", "Religious"),
          "2011-03-16": ("LentWeek2", "Religious"), "2011-03-17": ("StPatricksDay", "Cultural"),
          "2011-03-20": ("Purim End", "Religious")}
# SNAP days of the month per state, as in M5's calendar
SNAP_DAYS = {"CA": set(range(1, 11)), "TX": {1, 3, 5, 6, 7, 9, 11, 12, 13, 15},
             "WI": {2, 3, 5, 6, 8, 9, 11, 12, 14, 15}}
NOT_LISTED = ("CA_1", "FOODS_1_001", {11101, 11102, 11103})
NOT_ON_SALE = ("TX_1", "HOUSEHOLD_1_001", {11105})


def calendar() -> pd.DataFrame:
    dates = pd.date_range("2011-01-29", periods=DAYS, freq="D")
    rows = []
    for i, date in enumerate(dates):
        name, kind = EVENTS.get(date.strftime("%Y-%m-%d"), ("", ""))
        rows.append({"date": date.strftime("%Y-%m-%d"), "wm_yr_wk": 11101 + i // 7, "weekday": date.day_name(),
                     "wday": (date.day_of_week + 2) % 7 + 1, "month": date.month, "year": date.year, "d": f"d_{i + 1}",
                     "event_name_1": name, "event_type_1": kind, "event_name_2": "", "event_type_2": "",
                     **{f"snap_{s}": int(date.day in days) for s, days in SNAP_DAYS.items()}})
    return pd.DataFrame(rows)


def on_sale(store: str, item: str, week: int) -> bool:
    return not any((store, item) == (s, i) and week in weeks for s, i, weeks in (NOT_LISTED, NOT_ON_SALE))


def main() -> None:
    rng = np.random.default_rng(5)
    cal = calendar()
    weeks = cal["wm_yr_wk"].to_numpy()
    sales, prices = [], []
    for store in STORES:
        for item, price in ITEMS.items():
            dept, cat = item.rsplit("_", 1)[0], item.split("_")[0]
            selling = np.array([on_sale(store, item, w) for w in weeks])
            units = rng.poisson(rng.uniform(0.3, 4.0), DAYS) * selling
            sales.append([f"{item}_{store}_evaluation", item, dept, cat, store, store.split("_")[0], *units])
            for week in sorted(set(weeks)):
                if on_sale(store, item, week):
                    cut = 0.9 if item == "FOODS_3_001" and week >= 11106 else 1.0  # a lasting price change
                    prices.append([store, item, week, f"{price * cut:.2f}"])
    OUT.mkdir(exist_ok=True)
    cal.to_csv(OUT / "calendar.csv", index=False)
    header = ["id", "item_id", "dept_id", "cat_id", "store_id", "state_id", *(f"d_{i + 1}" for i in range(DAYS))]
    for name, head, rows in (("sales_train_evaluation.csv", header, sales),
                             ("sell_prices.csv", ["store_id", "item_id", "wm_yr_wk", "sell_price"], prices)):
        with open(OUT / name, "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(head)
            writer.writerows(rows)


if __name__ == "__main__":
    main()
