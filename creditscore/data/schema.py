"""Declared schema of the eight Kaggle "Home Credit Default Risk" tables.

Column names and order are those of the Kaggle release. Types are the ones the
prepared Parquet files carry: `int` (nullable Int32/Int64), `float` (Float64) or
`str`. The generator writes these columns in this order and `prepare` checks them.
"""
from __future__ import annotations

from dataclasses import dataclass

SENTINEL_DAYS = 365243  # "no date": Kaggle's placeholder in DAYS_* columns
MISSING_TOKENS = ("XNA", "Unknown")  # category values that mean "not recorded"

_APPLICATION = """
    SK_ID_CURR:int TARGET:int NAME_CONTRACT_TYPE:str CODE_GENDER:str FLAG_OWN_CAR:str
    FLAG_OWN_REALTY:str CNT_CHILDREN:int AMT_INCOME_TOTAL:float AMT_CREDIT:float
    AMT_ANNUITY:float AMT_GOODS_PRICE:float NAME_TYPE_SUITE:str NAME_INCOME_TYPE:str
    NAME_EDUCATION_TYPE:str NAME_FAMILY_STATUS:str NAME_HOUSING_TYPE:str
    REGION_POPULATION_RELATIVE:float DAYS_BIRTH:int DAYS_EMPLOYED:int DAYS_REGISTRATION:int
    DAYS_ID_PUBLISH:int OWN_CAR_AGE:int FLAG_MOBIL:int FLAG_EMP_PHONE:int
    FLAG_WORK_PHONE:int FLAG_CONT_MOBILE:int FLAG_PHONE:int FLAG_EMAIL:int
    OCCUPATION_TYPE:str CNT_FAM_MEMBERS:int REGION_RATING_CLIENT:int
    REGION_RATING_CLIENT_W_CITY:int WEEKDAY_APPR_PROCESS_START:str
    HOUR_APPR_PROCESS_START:int REG_REGION_NOT_LIVE_REGION:int
    REG_REGION_NOT_WORK_REGION:int LIVE_REGION_NOT_WORK_REGION:int
    REG_CITY_NOT_LIVE_CITY:int REG_CITY_NOT_WORK_CITY:int LIVE_CITY_NOT_WORK_CITY:int
    ORGANIZATION_TYPE:str EXT_SOURCE_1:float EXT_SOURCE_2:float EXT_SOURCE_3:float
    APARTMENTS_AVG:float BASEMENTAREA_AVG:float YEARS_BEGINEXPLUATATION_AVG:float
    YEARS_BUILD_AVG:float COMMONAREA_AVG:float ELEVATORS_AVG:float ENTRANCES_AVG:float
    FLOORSMAX_AVG:float FLOORSMIN_AVG:float LANDAREA_AVG:float LIVINGAPARTMENTS_AVG:float
    LIVINGAREA_AVG:float NONLIVINGAPARTMENTS_AVG:float NONLIVINGAREA_AVG:float
    APARTMENTS_MODE:float BASEMENTAREA_MODE:float YEARS_BEGINEXPLUATATION_MODE:float
    YEARS_BUILD_MODE:float COMMONAREA_MODE:float ELEVATORS_MODE:float ENTRANCES_MODE:float
    FLOORSMAX_MODE:float FLOORSMIN_MODE:float LANDAREA_MODE:float
    LIVINGAPARTMENTS_MODE:float LIVINGAREA_MODE:float NONLIVINGAPARTMENTS_MODE:float
    NONLIVINGAREA_MODE:float APARTMENTS_MEDI:float BASEMENTAREA_MEDI:float
    YEARS_BEGINEXPLUATATION_MEDI:float YEARS_BUILD_MEDI:float COMMONAREA_MEDI:float
    ELEVATORS_MEDI:float ENTRANCES_MEDI:float FLOORSMAX_MEDI:float FLOORSMIN_MEDI:float
    LANDAREA_MEDI:float LIVINGAPARTMENTS_MEDI:float LIVINGAREA_MEDI:float
    NONLIVINGAPARTMENTS_MEDI:float NONLIVINGAREA_MEDI:float FONDKAPREMONT_MODE:str
    HOUSETYPE_MODE:str TOTALAREA_MODE:float WALLSMATERIAL_MODE:str EMERGENCYSTATE_MODE:str
    OBS_30_CNT_SOCIAL_CIRCLE:int DEF_30_CNT_SOCIAL_CIRCLE:int OBS_60_CNT_SOCIAL_CIRCLE:int
    DEF_60_CNT_SOCIAL_CIRCLE:int DAYS_LAST_PHONE_CHANGE:int FLAG_DOCUMENT_2:int
    FLAG_DOCUMENT_3:int FLAG_DOCUMENT_4:int FLAG_DOCUMENT_5:int FLAG_DOCUMENT_6:int
    FLAG_DOCUMENT_7:int FLAG_DOCUMENT_8:int FLAG_DOCUMENT_9:int FLAG_DOCUMENT_10:int
    FLAG_DOCUMENT_11:int FLAG_DOCUMENT_12:int FLAG_DOCUMENT_13:int FLAG_DOCUMENT_14:int
    FLAG_DOCUMENT_15:int FLAG_DOCUMENT_16:int FLAG_DOCUMENT_17:int FLAG_DOCUMENT_18:int
    FLAG_DOCUMENT_19:int FLAG_DOCUMENT_20:int FLAG_DOCUMENT_21:int
    AMT_REQ_CREDIT_BUREAU_HOUR:float AMT_REQ_CREDIT_BUREAU_DAY:float
    AMT_REQ_CREDIT_BUREAU_WEEK:float AMT_REQ_CREDIT_BUREAU_MON:float
    AMT_REQ_CREDIT_BUREAU_QRT:float AMT_REQ_CREDIT_BUREAU_YEAR:float
"""

_BUREAU = """
    SK_ID_CURR:int SK_ID_BUREAU:int CREDIT_ACTIVE:str CREDIT_CURRENCY:str DAYS_CREDIT:int
    CREDIT_DAY_OVERDUE:int DAYS_CREDIT_ENDDATE:int DAYS_ENDDATE_FACT:int
    AMT_CREDIT_MAX_OVERDUE:float CNT_CREDIT_PROLONG:int AMT_CREDIT_SUM:float
    AMT_CREDIT_SUM_DEBT:float AMT_CREDIT_SUM_LIMIT:float AMT_CREDIT_SUM_OVERDUE:float
    CREDIT_TYPE:str DAYS_CREDIT_UPDATE:int AMT_ANNUITY:float
"""

_BUREAU_BALANCE = """
    SK_ID_BUREAU:int MONTHS_BALANCE:int STATUS:str
"""

_PREVIOUS_APPLICATION = """
    SK_ID_PREV:int SK_ID_CURR:int NAME_CONTRACT_TYPE:str AMT_ANNUITY:float
    AMT_APPLICATION:float AMT_CREDIT:float AMT_DOWN_PAYMENT:float AMT_GOODS_PRICE:float
    WEEKDAY_APPR_PROCESS_START:str HOUR_APPR_PROCESS_START:int
    FLAG_LAST_APPL_PER_CONTRACT:str NFLAG_LAST_APPL_IN_DAY:int RATE_DOWN_PAYMENT:float
    RATE_INTEREST_PRIMARY:float RATE_INTEREST_PRIVILEGED:float NAME_CASH_LOAN_PURPOSE:str
    NAME_CONTRACT_STATUS:str DAYS_DECISION:int NAME_PAYMENT_TYPE:str CODE_REJECT_REASON:str
    NAME_TYPE_SUITE:str NAME_CLIENT_TYPE:str NAME_GOODS_CATEGORY:str NAME_PORTFOLIO:str
    NAME_PRODUCT_TYPE:str CHANNEL_TYPE:str SELLERPLACE_AREA:int NAME_SELLER_INDUSTRY:str
    CNT_PAYMENT:int NAME_YIELD_GROUP:str PRODUCT_COMBINATION:str DAYS_FIRST_DRAWING:int
    DAYS_FIRST_DUE:int DAYS_LAST_DUE_1ST_VERSION:int DAYS_LAST_DUE:int DAYS_TERMINATION:int
    NFLAG_INSURED_ON_APPROVAL:int
"""

_POS_CASH_BALANCE = """
    SK_ID_PREV:int SK_ID_CURR:int MONTHS_BALANCE:int CNT_INSTALMENT:int
    CNT_INSTALMENT_FUTURE:int NAME_CONTRACT_STATUS:str SK_DPD:int SK_DPD_DEF:int
"""

_INSTALLMENTS_PAYMENTS = """
    SK_ID_PREV:int SK_ID_CURR:int NUM_INSTALMENT_VERSION:int NUM_INSTALMENT_NUMBER:int
    DAYS_INSTALMENT:int DAYS_ENTRY_PAYMENT:int AMT_INSTALMENT:float AMT_PAYMENT:float
"""

_CREDIT_CARD_BALANCE = """
    SK_ID_PREV:int SK_ID_CURR:int MONTHS_BALANCE:int AMT_BALANCE:float
    AMT_CREDIT_LIMIT_ACTUAL:float AMT_DRAWINGS_ATM_CURRENT:float AMT_DRAWINGS_CURRENT:float
    AMT_DRAWINGS_OTHER_CURRENT:float AMT_DRAWINGS_POS_CURRENT:float
    AMT_INST_MIN_REGULARITY:float AMT_PAYMENT_CURRENT:float AMT_PAYMENT_TOTAL_CURRENT:float
    AMT_RECEIVABLE_PRINCIPAL:float AMT_RECIVABLE:float AMT_TOTAL_RECEIVABLE:float
    CNT_DRAWINGS_ATM_CURRENT:int CNT_DRAWINGS_CURRENT:int CNT_DRAWINGS_OTHER_CURRENT:int
    CNT_DRAWINGS_POS_CURRENT:int CNT_INSTALMENT_MATURE_CUM:int NAME_CONTRACT_STATUS:str
    SK_DPD:int SK_DPD_DEF:int
"""


@dataclass(frozen=True)
class Table:
    """One Kaggle table: file name, ordered typed columns, unique key and parent link."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: str | None = None
    parent: tuple[str, str] | None = None  # (parent table, linking column)
    required: bool = False
    bom: bool = False  # the Kaggle file starts with a UTF-8 byte-order mark
    sentinel_columns: tuple[str, ...] = ()  # DAYS_* columns where 365243 is common: flagged in prepare

    @property
    def file(self) -> str:
        return f"{self.name}.csv"

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def dtype(self, column: str) -> str:
        return dict(self.columns)[column]


def _parse(spec: str, drop: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    pairs = (item.split(":") for item in spec.split())
    return tuple((c, t) for c, t in pairs if c not in drop)


TABLES: dict[str, Table] = {t.name: t for t in (
    Table("application_train", _parse(_APPLICATION), key="SK_ID_CURR", required=True,
          sentinel_columns=("DAYS_EMPLOYED",)),
    Table("application_test", _parse(_APPLICATION, drop=("TARGET",)), key="SK_ID_CURR",
          sentinel_columns=("DAYS_EMPLOYED",)),
    Table("bureau", _parse(_BUREAU), key="SK_ID_BUREAU", parent=("application", "SK_ID_CURR")),
    Table("bureau_balance", _parse(_BUREAU_BALANCE), parent=("bureau", "SK_ID_BUREAU"), bom=True),
    Table("previous_application", _parse(_PREVIOUS_APPLICATION), key="SK_ID_PREV",
          parent=("application", "SK_ID_CURR"), sentinel_columns=(
              "DAYS_FIRST_DRAWING", "DAYS_FIRST_DUE", "DAYS_LAST_DUE_1ST_VERSION", "DAYS_LAST_DUE", "DAYS_TERMINATION")),
    Table("POS_CASH_balance", _parse(_POS_CASH_BALANCE), parent=("application", "SK_ID_CURR"), bom=True),
    Table("installments_payments", _parse(_INSTALLMENTS_PAYMENTS), parent=("application", "SK_ID_CURR"),
          bom=True),
    Table("credit_card_balance", _parse(_CREDIT_CARD_BALANCE), parent=("application", "SK_ID_CURR"),
          bom=True),
)}
HISTORY_TABLES = [n for n, t in TABLES.items() if t.parent is not None]
KEY = "SK_ID_CURR"  # the client: every table links to it, every feature row is keyed by it
