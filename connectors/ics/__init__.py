"""Calendar (.ics) files: a fast column-wise reader and the icalendar one it falls back to."""
