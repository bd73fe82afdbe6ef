"""Alerts: incidents and Slack payloads (incidents, pure), log and webhook delivery (delivery)."""
