"""``keel`` subcommands, one module each."""
