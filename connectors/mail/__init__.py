"""Mail files (mbox, Maildir, .eml): headers only, never bodies."""
