"""Importers, exporters, webhooks and connectors: how data enters and leaves Closeloop."""
