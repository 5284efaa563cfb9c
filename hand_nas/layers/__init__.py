"""Reusable blocks, one concept per file."""
