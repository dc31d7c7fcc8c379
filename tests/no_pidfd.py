"""Imported by a fork server (``pool.ordered_map``'s ``preload``): its workers run as on a system without
pidfds (macOS, a Linux kernel before 5.3)."""

import os

del os.pidfd_open
