"""owrelease: the OpenWatch release toolkit (freeze, render, build RPM and DEB, inspect, verify).

Imported with ``packaging/`` on sys.path; ``packaging/`` itself is never a package.
"""
