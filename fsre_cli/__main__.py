from fsre_cli import interrupts

interrupts.install()  # first, so a Ctrl-C while the command line loads is recorded and ends in exit 130

from fsre_cli.cli import main  # noqa: E402

main()
