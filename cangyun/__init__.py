"""cangyun (仓运通): edge-to-cloud warehouse scanning platform.

This package is the shared kernel: only what the edge and the cloud must agree on
(the wire contract, movement validation, identifiers, time) plus the one ``cangyun`` CLI.
"""

__version__ = "0.1.0"
