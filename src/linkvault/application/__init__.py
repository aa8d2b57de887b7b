"""Application layer: the use cases that drive the domain through the ports."""
