"""What the service tells its operators: Prometheus metrics and structured logs. Below the
services: it imports nothing of ours above `settings`."""
