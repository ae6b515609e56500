"""The database: URL and engine per DB_TYPE, base model, migrations and the locked migrator."""
