"""Slack as a source: a workspace export (``export``) and the Web API (``source``)."""
