"""The runtimed daemon: kernels to Automerge notebook rooms."""

__version__ = "0.1.0"
