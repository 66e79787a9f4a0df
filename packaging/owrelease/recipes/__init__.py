"""How each piece of the build root is compiled: one short module per recipe.

Each recipe holds its configure arguments (inputs of the root's cache key) and returns the shell script
the root runs for it.  The tarball is already in ``/opt/ow/src``, verified against the lock
(:mod:`owrelease.runtimesrc`).
"""
