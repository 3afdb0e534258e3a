"""The lake's statements: newest version per key in a batch, party keys and lists, holdings,
export-mine, and the live records of a lake of the old format (upgrade)."""

from timeaudit.core.sql_files import sql_folder

read_sql = sql_folder(__file__)
