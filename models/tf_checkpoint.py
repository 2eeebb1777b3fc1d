"""Read a TensorFlow (V2 bundle) checkpoint's variables without TensorFlow.

A checkpoint PREFIX is PREFIX.index, a LevelDB-format table (tensor name -> BundleEntryProto:
dtype, shape, shard, offset, size), and PREFIX.data-00000-of-0000N, the raw little-endian
tensor bytes. Pretrained weights that ship as TensorFlow checkpoints inside a Python wheel
(musicnn's) are read with this, so neither training nor the app needs TensorFlow.
Only the parts such checkpoints use are implemented: uncompressed blocks, numeric dtypes.
"""
from __future__ import annotations

import glob
import struct
from pathlib import Path

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
# TensorFlow DataType enum -> NumPy dtype (the numeric ones).
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
          9: np.int64, 10: np.bool_, 19: np.float16}


class CheckpointFormatError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointFormatError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _block(table: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of one table block (prefix-compressed keys)."""
    if offset + size + 5 > len(table):
        raise CheckpointFormatError("block beyond the end of the index file")
    if table[offset + size] != 0:
        raise CheckpointFormatError("compressed index blocks are not supported")
    data = table[offset:offset + size]
    if len(data) < 4:
        raise CheckpointFormatError("empty index block")
    (restarts,) = struct.unpack_from("<I", data, len(data) - 4)
    end = len(data) - 4 - 4 * restarts
    if end < 0:
        raise CheckpointFormatError("corrupt index block")
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(data, pos)
        unshared, pos = _varint(data, pos)
        vlen, pos = _varint(data, pos)
        key = key[:shared] + data[pos:pos + unshared]
        pos += unshared
        entries.append((key, data[pos:pos + vlen]))
        pos += vlen
    return entries


def _fields(msg: bytes) -> list[tuple[int, int, object]]:
    """Protobuf wire format -> [(field number, wire type, value)] (varints and bytes)."""
    out, pos = [], 0
    while pos < len(msg):
        tag, pos = _varint(msg, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(msg, pos)
        elif wire == 2:
            n, pos = _varint(msg, pos)
            value, pos = msg[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = msg[pos:pos + 4], pos + 4
        elif wire == 1:
            value, pos = msg[pos:pos + 8], pos + 8
        else:
            raise CheckpointFormatError(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


def _entry(value: bytes) -> dict:
    """BundleEntryProto: dtype=1, shape=2 (TensorShapeProto: dim=2 {size=1}), shard_id=3, offset=4, size=5."""
    e = {"dtype": 0, "shape": [], "shard": 0, "offset": 0, "size": 0}
    for field, _, v in _fields(value):
        if field == 1:
            e["dtype"] = v
        elif field == 2:
            for f2, _, dim in _fields(v):
                if f2 == 2:
                    e["shape"].append(next((s for f3, _, s in _fields(dim) if f3 == 1), 0))
        elif field in (3, 4, 5):
            e[{3: "shard", 4: "offset", 5: "size"}[field]] = v
    return e


def read_index(prefix: str | Path) -> dict[str, dict]:
    """Tensor name -> {dtype, shape, shard, offset, size} from PREFIX.index."""
    table = Path(f"{prefix}.index").read_bytes()
    if len(table) < FOOTER_BYTES or struct.unpack_from("<Q", table, len(table) - 8)[0] != TABLE_MAGIC:
        raise CheckpointFormatError(f"{prefix}.index is not a TensorFlow checkpoint index")
    footer = table[-FOOTER_BYTES:]
    _, pos = _varint(footer, 0)  # metaindex handle (unused)
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    entries = {}
    for _, handle in _block(table, index_offset, index_size):
        offset, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for key, value in _block(table, offset, size):
            if key:  # the empty key holds the BundleHeaderProto
                entries[key.decode()] = _entry(value)
    return entries


def load_tf_checkpoint(prefix: str | Path, skip=("Adam", "power")) -> dict[str, np.ndarray]:
    """Every variable of the checkpoint whose name contains none of `skip` (optimizer slots
    by default), as NumPy arrays in TensorFlow's layout."""
    prefix = str(prefix)
    index = read_index(prefix)
    shards = {}
    out = {}
    for name, e in sorted(index.items()):
        if any(s in name for s in skip):
            continue
        if e["dtype"] not in DTYPES:
            raise CheckpointFormatError(f"{name}: unsupported dtype {e['dtype']}")
        if e["shard"] not in shards:
            n = len(glob.glob(glob.escape(prefix) + ".data-*"))  # a prefix may end in "/" (musicnn's)
            shards[e["shard"]] = Path(f"{prefix}.data-{e['shard']:05d}-of-{n:05d}").read_bytes()
        dtype = np.dtype(DTYPES[e["dtype"]]).newbyteorder("<")
        raw = shards[e["shard"]][e["offset"]:e["offset"] + e["size"]]
        count = int(np.prod(e["shape"])) if e["shape"] else 1
        if len(raw) != count * dtype.itemsize:
            raise CheckpointFormatError(f"{name}: {len(raw)} bytes for shape {e['shape']}")
        out[name] = np.frombuffer(raw, dtype=dtype).reshape(e["shape"]).astype(dtype.newbyteorder("="))
    return out
