"""`linkvault demo`: real connects, concurrent workers and a rotation check.

The demo starts the sandbox authorization server and worker processes on
loopback and connects users through the authorization code flow. Several
workers then refresh the users' tokens at once while the sandbox serves
injected faults. At the end the demo checks that no refresh token was
redeemed twice and that every stored one is the sandbox's current one.
"""
