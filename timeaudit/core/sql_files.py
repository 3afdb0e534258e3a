"""SQL lives in .sql files beside the code that runs it, one statement or query per file."""

from collections.abc import Callable
from functools import cache
from pathlib import Path


def sql_folder(package_file: str) -> Callable[[str], str]:
    """A cached reader of the .sql files in the folder of ``package_file``."""
    folder = Path(package_file).parent

    @cache
    def read_sql(name: str) -> str:
        return (folder / name).read_text(encoding="utf-8")

    return read_sql
