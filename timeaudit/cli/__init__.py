"""The `timeaudit` command: one module per command group, assembled in ``app``."""

from timeaudit.cli.app import app

__all__ = ["app"]
