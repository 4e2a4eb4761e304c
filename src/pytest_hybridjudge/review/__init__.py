"""Reviewer tools: list, show and resolve escalated review items; resolutions are append-only."""
