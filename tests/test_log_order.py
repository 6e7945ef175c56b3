"""Every log line of a followed run is printed before the line that says it ended (issue 24):
`push --wait` and `status --watch` on real local runs whose notebook prints its last lines at
its very end, so that they land in the poll that sees the run complete."""

import re

from conftest import TINY_JOB

LAST_LINES = 40

# The tiny job, ending with a burst of lines right before the run completes.
BURST_JOB = TINY_JOB.replace(
    '    print("wrote result.json with", len(values), "values")\n',
    '    print("wrote result.json with", len(values), "values")\n'
    f'    for i in range({LAST_LINES}):\n'
    '        print("last line", i, flush=True)\n')


def ended_after_every_line(stderr: str) -> None:
    lines = stderr.splitlines()
    ended = [i for i, line in enumerate(lines) if re.search(r"\] tiny v1\b.*: complete", line)]
    printed = [i for i, line in enumerate(lines) if "| last line" in line]
    assert len(printed) == LAST_LINES, stderr  # each once
    assert ended and max(printed) < ended[0], stderr


def test_push_wait_and_status_watch_print_every_log_line_before_the_final_status(tiny):
    tiny.write("src/pkg/job.py", BURST_JOB)
    pushed = tiny.kjob("push", "tiny", "--backend", "local", "--wait")
    assert pushed.exit_code == 0, pushed.output
    ended_after_every_line(pushed.stderr)
    watched = tiny.kjob("status", "tiny", "--watch")  # an ended run: its whole log, then its status
    assert watched.exit_code == 0, watched.output
    ended_after_every_line(watched.stderr)
