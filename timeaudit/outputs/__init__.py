"""What people take away: derived tables, summaries, exports, figures and text reports."""
