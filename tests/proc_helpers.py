"""Finding a run's processes from outside, for tests that check nothing is left running."""

from pathlib import Path


def processes_with_home(home: Path) -> dict[int, str]:
    """Host pids and command lines of the processes whose HOME is `home` (Linux /proc)."""
    wanted = f"HOME={home.resolve()}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "environ").read_bytes().split(b"\0"):
                    found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                pass  # gone, or not ours to read
    return found
