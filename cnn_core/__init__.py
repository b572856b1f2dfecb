"""CNN Lab's engine, in rooms that follow the data flow: data → models → runs → explain.

`settings` (every environment variable) lies under them all; `catalog` (the trained models a
page can use) and `cli` (``python -m cnn_core``) over them. ARCHITECTURE.md draws the house.
"""
