"""What every layer shares: the record model, settings, the roster, tags, ISO weeks and errors."""
