"""``python -m tela_memory``: the ``tela-memory`` command line."""

from tela_memory.cli import main

if __name__ == "__main__":
    main()
