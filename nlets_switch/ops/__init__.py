"""Operators: events, MQTT, HTTP API and dashboard, metrics, audit trail, message log, retention.
"""
