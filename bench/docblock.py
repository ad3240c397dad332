"""bench/docblock.py — writes a benchmark's table into docs/BENCHMARKS.md between its markers
(<!-- NAME:begin --> and <!-- NAME:end -->), replacing what was there, or appends it with the
markers. Used by the benchmark scripts' report code."""
import os


def write_block(doc, name, table):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = open(doc).read()
    block = f"{begin}\n{table}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(doc + ".tmp", "w") as f:
        f.write(text)
    os.replace(doc + ".tmp", doc)
