"""SQL files of timeaudit, one statement or query per file, read by the code beside them."""

from functools import cache
from pathlib import Path

_HERE = Path(__file__).parent


@cache
def read_sql(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")
