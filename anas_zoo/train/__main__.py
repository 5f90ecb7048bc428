"""`python -m anas_zoo.train` / `torchrun -m anas_zoo.train`: the anas-train command."""

from anas_zoo.cli.train import main

raise SystemExit(main())
