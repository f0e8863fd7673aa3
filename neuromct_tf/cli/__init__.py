"""The ``neuromct-tf`` command: one sub-command per pipeline stage.

The modules here only parse options, configure logging and progress bars, and
call the library; all the work happens in the stage packages.
"""
