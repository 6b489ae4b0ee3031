"""The demo of `cubestac demo`: a small generated world shaped like the forest-recovery case,
served as an upstream would be, harvested and built into a cube with the CLI's own code.

`world` writes the inputs, `files` serves them on 127.0.0.1, `session` runs the harvest and
the cube build, `preview` draws each cube's quicklook. The `cubestac` CLI only parses the
command line and calls `session`; the tests use `world` and `files` as fixtures too.
"""
