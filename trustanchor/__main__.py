from trustanchor.cli.main import main

main()
