"""Classification, weekly metrics and the audit, as SQL over one snapshot of the lake."""
