"""Business domains: one folder each (models, schemas, services, controllers)."""
