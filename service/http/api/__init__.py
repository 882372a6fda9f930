"""The JSON API for EHR integrations: its blueprint, request schemas, validation and OpenAPI paths."""
