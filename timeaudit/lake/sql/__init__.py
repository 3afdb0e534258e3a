"""The lake's statements: newest version per key, party keys and lists, compaction, holdings."""

from timeaudit.core.sql_files import sql_folder

read_sql = sql_folder(__file__)
