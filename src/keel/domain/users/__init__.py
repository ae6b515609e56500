"""Users (people, JWT) and API keys (services, request signatures)."""
