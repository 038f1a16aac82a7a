"""Alerts: what firings and SLA misses open, and the notifications, silences and
inhibitions about them."""
