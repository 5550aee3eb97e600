"""Converters from the official corpus layouts to `datasets`, and the embedded demo corpus."""
