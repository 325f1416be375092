"""The embedded development stack: every real server acmeflow needs, on 127.0.0.1.

One piece of code serves both ``acmeflow dev`` and the pytest session fixtures, so the
stack a developer runs by hand is the stack the tests prove.
"""
