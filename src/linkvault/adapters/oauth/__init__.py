"""OAuth 2.0 client adapter on httpx."""

from linkvault.adapters.oauth.client import HttpTokenEndpoint

__all__ = ["HttpTokenEndpoint"]
