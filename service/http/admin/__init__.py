"""The ruleset administrators' side: publish, activate, roll back and shadow revisions (admin token)."""
