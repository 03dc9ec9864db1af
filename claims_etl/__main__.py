from claims_etl.cli.app import main

main()
