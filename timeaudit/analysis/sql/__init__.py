"""The analysis's queries: classification, person-days, weekly metrics and the audit."""

from timeaudit.core.sql_files import sql_folder

read_sql = sql_folder(__file__)
