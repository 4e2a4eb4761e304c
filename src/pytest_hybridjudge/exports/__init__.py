"""Exports: what trainers and labelling tools read (preference data, Label Studio tasks)."""
