"""Shared conformance suites: one per storage contract, subclassed once per backend."""
