"""Who may reach what, and how often: rate limits per credential and client address, session revocation."""
