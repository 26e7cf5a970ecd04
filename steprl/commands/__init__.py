"""One module per ``steprl`` subcommand: ``add_parser(subparsers)`` and ``run(args) -> int``."""
