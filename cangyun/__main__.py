from cangyun.cli import main

main()
