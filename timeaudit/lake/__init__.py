"""The lake: record tables, sync cursors, imports and the sync driver that runs any source."""
