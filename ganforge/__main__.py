from ganforge.cli.main import entry

entry()
