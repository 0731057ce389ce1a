"""The stand-in for a kill that the resume tests raise (``conftest.kill_at_run``)."""


class Killed(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way catches it."""
