"""Census-Income (KDD), as preprocessed for the MMoE paper's two-task setting."""

from __future__ import annotations

import re

from mtl.data.ingest.adapters.layout import CsvLayout

DENSE = ("age", "wage_per_hour", "capital_gains", "capital_losses", "divdends_from_stocks",
         "num_persons_worked_for_employer", "weeks_worked_in_year")
IDS = ("class_of_worker", "industry_code", "occupation_code", "education", "enrolled_in_edu_inst_last_wk",
       "major_industry_code", "major_occupation_code", "race", "hispanic_origin", "sex",
       "member_of_a_labor_union", "reason_for_unemployment", "full_or_part_time_employment_stat",
       "tax_filer_status", "region_of_previous_residence", "state_of_previous_residence",
       "detailed_household_and_family_stat", "detailed_household_summary_in_household",
       "migration_code_change_in_msa", "migration_code_change_in_reg", "migration_code_move_within_reg",
       "live_in_this_house_1_year_ago", "migration_prev_res_in_sunbelt", "family_members_under_18",
       "country_of_birth_father", "country_of_birth_mother", "country_of_birth_self", "citizenship",
       "own_business_or_self_employed", "fill_inc_questionnaire_for_veterans_admin", "veterans_benefits",
       "year")


def snake_case(column: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", column.strip().lower()).strip("_")


class CensusIncome(CsvLayout):
    """census_income_train.csv / _val.csv / _test.csv with the original column names.

    The files name columns in words with spaces ("class of worker", "marital status"); the raw
    log renames every column to snake_case (class_of_worker, marital_status), so params.yaml
    needs no quoting and no name has a space. The dataset's own spelling is kept otherwise
    ("divdends from stocks" -> divdends_from_stocks). Files already in snake_case read the same.
    """

    name = "census_income"

    ids = IDS
    dense = DENSE
    labels = ("income", "marital_status")
    columns_doc = ("age, class of worker, ..., marital status, ..., year, income (in any spelling that is the same "
                   "in snake_case)")
    expects = ("a folder of CSV files named *train*, *val* (optional) and *test* holding the preprocessed "
               "Census-Income data (census_income_train.csv, census_income_val.csv, census_income_test.csv)")

    def canonical(self, column: str) -> str:
        return snake_case(column)
