"""Placeholder: this rule is not written yet (nothing is registered)."""
