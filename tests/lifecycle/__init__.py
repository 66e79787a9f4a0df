"""The operator's lifecycle, for real: install, upgrade, reinstall, remove and purge with apt, dnf and rpm in
clean Debian bookworm roots, and the service under a real systemd (systemd-nspawn -b).

Host tools (all installed by .ci/run): debootstrap, systemd-container (systemd-nspawn), apt-utils
(apt-ftparchive), dnf, createrepo-c, rpm (rpmbuild for the fakesys package), postgresql (psql), util-linux
(mount, nsenter). The first run needs the Debian mirror to build the cached roots
(/var/cache/openwatch-tests).

    roots.py     cached debootstrap bases, copy-on-write fresh roots, mount bookkeeping
    nspawn.py    a booted container: PID 1 discovery, commands through nsenter, clean power-off
    repos.py     apt-ftparchive and createrepo_c repositories, the fakesys RPM
    packages.py  the newer build made from a copy of the tree
    checks.py    what holds after every install (from packaging/package.toml)
    ops.py       the operator's procedures (migration guide, package notes)
"""
