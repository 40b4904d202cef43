from vfm.cli.main import entry

entry()
