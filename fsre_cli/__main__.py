from fsre_cli.cli import main

main()
