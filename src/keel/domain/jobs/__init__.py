"""Jobs: accepted by the API, recorded in the database, run by workers at least once."""
