from infogan_pl.train import main

main()
