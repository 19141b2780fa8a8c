"""Manifest formats: each reads a live endpoint's manifests and writes the VOD's (see engine.formats)."""
