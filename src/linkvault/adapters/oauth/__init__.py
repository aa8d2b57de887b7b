"""OAuth 2.0 client adapter over aiohttp or httpx."""

from linkvault.adapters.oauth.client import HttpTokenEndpoint

__all__ = ["HttpTokenEndpoint"]
