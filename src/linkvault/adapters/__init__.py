"""Adapters: real and in-memory implementations of the ports."""
