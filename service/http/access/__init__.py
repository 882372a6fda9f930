"""Who may reach what, and how often: credentials and roles (credentials.py, roles.py), rate limits per
credential and client address (limits.py)."""
