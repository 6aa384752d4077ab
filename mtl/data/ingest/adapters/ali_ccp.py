"""Ali-CCP (Alibaba Click and Conversion Prediction), as preprocessed by torch-rechub."""

from __future__ import annotations

from mtl.data.ingest.adapters.layout import CsvLayout

IDS = ("101", "121", "122", "124", "125", "126", "127", "128", "129", "205", "206", "207", "210", "216",
       "508", "509", "702", "853", "301", "109_14", "110_14", "127_14", "150_14")
DENSE = ("D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853")


class AliCCP(CsvLayout):
    """ali_ccp_train.csv / ali_ccp_val.csv / ali_ccp_test.csv: one row per impression.

    Columns keep their names: the feature-field ids of the dataset ("101" user id, "205" item
    id, ...; D* are the dense versions of the multi-value fields) and the labels click, purchase.
    """

    name = "ali_ccp"

    ids = IDS
    dense = DENSE
    labels = ("click", "purchase")
    columns_doc = "click, purchase, " + ", ".join(IDS[:4]) + ", ..., " + ", ".join(DENSE[-2:])
    expects = ("a folder of CSV files named *train*, *val* (optional) and *test* from torch-rechub's "
               "preprocessing of Ali-CCP (ali_ccp_train.csv, ali_ccp_val.csv, ali_ccp_test.csv)")
