"""Tests of api.webhooks."""
