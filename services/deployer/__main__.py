from services.deployer.server import main

main()
