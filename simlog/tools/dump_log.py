"""`simlog dump-log FILE`: print a segment (or index) like kafka-dump-log.

Reads the file from the real file system; the formatting and checks live in
`simlog.storage.dump`. Exit status 1 with --verify when a CRC or the offsets are wrong
(the message names the first bad offset), or when the file cannot be read.
"""

from __future__ import annotations

from pathlib import Path

import click

from simlog.storage.dump import dump_offset_index, dump_segment, dump_time_index


@click.command("dump-log")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--print-data-log", is_flag=True, help="Print every record (key, payload).")
@click.option("--verify", is_flag=True, help="Check CRCs and offset continuity; exit 1 on the first bad offset.")
@click.option("--allow-gaps", is_flag=True, help="With --verify: offset gaps (compacted logs) are fine.")
def dump_log(file: Path, print_data_log: bool, verify: bool, allow_gaps: bool) -> None:
    """Print the batches (and with --print-data-log the records) of a segment file."""
    data = file.read_bytes()
    stem = file.name.split(".", 1)[0]
    base = int(stem) if stem.isdigit() else 0
    click.echo(f"Dumping {file}")
    if file.suffix == ".index":
        result = dump_offset_index(data, base)
    elif file.suffix == ".timeindex":
        result = dump_time_index(data, base)
    else:
        result = dump_segment(data, print_data=print_data_log, allow_gaps=allow_gaps)
    for line in result.lines:
        click.echo(line)
    if verify:
        if result.problem is not None:
            click.echo(f"Verification failed at offset {result.problem_offset}: {result.problem}", err=True)
            raise SystemExit(1)
        click.echo("Verification passed")
