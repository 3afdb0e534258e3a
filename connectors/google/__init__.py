"""Google sources: shared credentials (``auth``), one retrying, pacing, counting HTTP layer with
the ``TIMEAUDIT_GOOGLE_API_ENDPOINT`` override (``http``), and the connectors built on them
(``calendar``; Gmail reuses the same two modules). See docs/google.md for set-up."""
