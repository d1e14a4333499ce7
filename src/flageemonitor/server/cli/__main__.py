from flageemonitor.server.cli.app import main

main()
