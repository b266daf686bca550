"""Running the daemon as a service: detached start and stop (`background`), the
one-daemon-per-socket lock (`lock`), a systemd user unit (`systemd`), and starting one
for a client that found none (`autostart`).

Submodules are imported by name; this package imports none of them, so the client
can use `autostart` without pulling in the rest.
"""
