"""The known clients' application rows as blocks of Arrow IPC bytes: written by the reference stage, read one block
per request by the API. Bytes load without Polars (the gunicorn master shares them with its workers), and no worker
holds every row as a frame."""
from __future__ import annotations

import io

import polars as pl

from creditscore.serving.bundle import CLIENT_BLOCK


def arrow_blocks(frame: pl.DataFrame, size: int = CLIENT_BLOCK) -> list[bytes]:
    """The frame as Arrow IPC bytes, one item per `size` consecutive rows (uncompressed: the artifact file is
    compressed as a whole)."""
    blocks = []
    for start in range(0, frame.height, size):
        buffer = io.BytesIO()
        frame.slice(start, size).write_ipc(buffer, compression="uncompressed")
        blocks.append(buffer.getvalue())
    return blocks


def block_row(blocks: list[bytes], row: int, size: int = CLIENT_BLOCK) -> pl.DataFrame:
    """Row `row` of the frame `arrow_blocks` split, as a one-row frame with its schema."""
    if not 0 <= row < len(blocks) * size:
        raise IndexError(f"row {row} is outside the {len(blocks)} blocks")
    block, at = divmod(row, size)
    frame = pl.read_ipc(io.BytesIO(blocks[block]))
    if at >= frame.height:
        raise IndexError(f"row {row} is outside the last block")
    return frame.slice(at, 1)
