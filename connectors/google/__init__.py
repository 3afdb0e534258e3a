"""Google sources: shared credentials (``auth``), one retrying, pacing, counting HTTP layer with
the ``TIMEAUDIT_GOOGLE_API_ENDPOINT`` override (``http``), whom a run reads (``targets``), the
API readers (``calendar``, ``gmail``) and the sources built on them under the contract of
``connectors.base`` (``source`` shared, ``calendar_source``, ``gmail_source``). See docs/google.md."""
