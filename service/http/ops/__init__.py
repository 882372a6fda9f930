"""What operators and integrators use: health and readiness, Prometheus metrics, the API docs page."""
