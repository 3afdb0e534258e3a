"""The derived tables' own queries: which person-weeks a refresh recomputes, and the merge."""

from timeaudit.core.sql_files import sql_folder

read_sql = sql_folder(__file__)
