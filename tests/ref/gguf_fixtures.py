#!/usr/bin/env python3
"""Reference fixtures for the GGUF reader tests (tests/test_gguf.cpp).

Writes small GGUF files with the `gguf` PyPI package (llama.cpp's gguf-py; tested with 0.19.0 and
numpy 1.24) holding tensors of every ggml type, and records what the package's own
gguf.quants.dequantize makes of each tensor, as raw little-endian float32 files. The C++ test reads
the same files with rlhf's GgufFile and compares bit for bit.

  gguf_fixtures.py --out BUILD/tests/gguf_fixtures      (then RLHF_GGUF_FIXTURE_DIR=that dir)

Tensor data:
  * types the package can quantise (BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 TQ2_0 MXFP4): random normal floats
    quantised by gguf.quants.quantize;
  * every supported block type again, and the others (Q2_K..Q6_K, Q8_K, IQ4_NL, IQ4_XS; the unsupported
    IQ*, TQ1_0, NVFP4, Q1_0): random raw block bytes, with every fp16 scale field (Q8_K: float32;
    MXFP4: the exponent byte) set to a finite value so that references hold no NaN/Inf from scales;
  * F16 and BF16: every one of the 65536 bit patterns (NaN and Inf included), F32/F64/I8..I64: random.
References: gguf.quants.dequantize for every type it implements; for Q8_K (the package has no
dequantize for it), F64 and I8..I64 (not in gguf.quants) a numpy transcription noted in the manifest as
"ref_source": "numpy". Unsupported types carry "ref": null: the C++ reader must size them and refuse to
dequantise them with a message naming the tensor.

Writes into OUT:
  types_v3.gguf      every type, default alignment 32
  meta_v3.gguf       metadata of every value type (arrays of strings, nested arrays), alignment 64
  small_v2.gguf      a few tensors and keys, its version field set to 2 (v2 and v3 share the layout;
                     v3 only added big-endian files), since the package writes only version 3
  *.f32              references, one per tensor
  manifest.json      {"gguf_package": version, "files": [{file, version, alignment, metadata, tensors}]}
Deterministic (fixed seed). Needs /work/main/.venv with `pip install gguf==0.19.0`."""
import argparse
import json
import os
import struct
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V
from gguf.constants import GGML_QUANT_SIZES

SEED = 1234

# byte offsets of the fp16 scale fields in each block (ggml-common.h's block structs)
FP16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.IQ4_NL: [0], T.IQ4_XS: [0], T.TQ2_0: [64], T.TQ1_0: [52], T.Q1_0: [0],
    T.IQ2_XXS: [0], T.IQ2_XS: [0], T.IQ2_S: [0], T.IQ3_XXS: [0], T.IQ3_S: [0], T.IQ1_S: [0],
}
F32_FIELDS = {T.Q8_K: [0]}
E8M0_FIELDS = {T.MXFP4: [0]}  # exponent bytes: kept in a range whose products stay finite

QUANTISABLE = [T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.TQ2_0, T.MXFP4]
RAW_SUPPORTED = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K,
                 T.IQ4_NL, T.IQ4_XS, T.TQ2_0, T.MXFP4]
# Types rlhf's reader sizes but does not dequantise.
UNSUPPORTED = [T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ3_XXS, T.IQ3_S, T.IQ1_S, T.IQ1_M, T.TQ1_0, T.NVFP4, T.Q1_0]


def random_blocks(rng, qtype, shape):
    """uint8 bytes of shape (*shape[:-1], shape[-1] / block * type_size), scales finite."""
    block, size = GGML_QUANT_SIZES[qtype]
    assert shape[-1] % block == 0
    n_blocks = int(np.prod(shape)) // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in FP16_FIELDS.get(qtype, []):
        scales = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        scales[::7] = np.float16(6e-6)  # a subnormal fp16 scale now and then
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    for off in F32_FIELDS.get(qtype, []):
        scales = (rng.standard_normal(n_blocks) * 0.01).astype(np.float32)
        raw[:, off:off + 4] = scales.view(np.uint8).reshape(n_blocks, 4)
    for off in E8M0_FIELDS.get(qtype, []):
        raw[:, off] = rng.integers(100, 150, size=n_blocks, dtype=np.uint8)
    return raw.reshape(*shape[:-1], shape[-1] // block * size)


def numpy_reference(qtype, raw):
    """Transcriptions of ggml-quants.c for what gguf.quants does not dequantise."""
    if qtype == T.Q8_K:  # block_q8_K { float d; int8 qs[256]; int16 bsums[16]; }: y = d * qs
        blocks = raw.reshape(-1, 292)
        d = blocks[:, :4].copy().view(np.float32)
        qs = blocks[:, 4:260].copy().view(np.int8).astype(np.float32)
        return (d * qs).reshape(-1)
    plain = {T.F64: np.float64, T.I8: np.int8, T.I16: np.int16, T.I32: np.int32, T.I64: np.int64}
    return raw.reshape(-1).view(plain[qtype]).astype(np.float32)


class Fixture:
    def __init__(self, out, name, alignment=None):
        self.out, self.name = out, name
        self.path = os.path.join(out, name)
        self.writer = gguf.GGUFWriter(self.path, arch="llama")
        self.alignment = 32
        if alignment:
            self.writer.add_custom_alignment(alignment)
            self.alignment = alignment
        self.tensors = []
        self.metadata = [{"key": "general.architecture", "type": "STRING", "value": "llama"}]
        if alignment:
            self.metadata.append({"key": "general.alignment", "type": "UINT32", "value": alignment})

    def add_tensor(self, name, qtype, raw, ref_source):
        """raw: the stored bytes (uint8, byte shape) or a typed numpy array for plain types."""
        plain = raw.dtype != np.uint8
        if plain:
            self.writer.add_tensor(name, raw)
            raw_bytes = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
            ne = list(reversed(raw.shape))
        else:
            self.writer.add_tensor(name, raw, raw_dtype=qtype)
            raw_bytes = raw.reshape(-1)
            shape = gguf.quants.quant_shape_from_byte_shape(raw.shape, qtype)
            ne = list(reversed(shape))
        entry = {"name": name, "type": qtype.name, "type_id": int(qtype), "ne": [int(x) for x in ne],
                 "numel": int(np.prod(ne)), "ref": None, "ref_source": ref_source}
        if ref_source == "gguf.quants.dequantize":
            ref = gguf.quants.dequantize(raw_bytes if not plain else raw_bytes.view(raw.dtype), qtype)
        elif ref_source == "numpy":
            ref = numpy_reference(qtype, raw_bytes)
        else:
            ref = None
        if ref is not None:
            ref = np.ascontiguousarray(ref, dtype=np.float32).reshape(-1)
            assert ref.size == entry["numel"], (name, ref.size, entry["numel"])
            ref_name = f"{os.path.splitext(self.name)[0]}__{name}.f32"
            ref.astype("<f4").tofile(os.path.join(self.out, ref_name))
            entry["ref"] = ref_name
        self.tensors.append(entry)

    def add_kv(self, key, value, vtype, sub_type=None, expected=None):
        self.writer.add_key_value(key, value, vtype, sub_type=sub_type)
        e = {"key": key, "type": vtype.name, "value": value if expected is None else expected}
        if vtype == V.ARRAY:
            e["elem_type"] = (sub_type if sub_type is not None else V.get_type(value[0])).name
        self.metadata.append(e)

    def close(self):
        w = self.writer
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        self.check_with_package_reader()
        return {"file": self.name, "version": 3, "alignment": self.alignment, "metadata": self.metadata,
                "tensors": self.tensors}

    def check_with_package_reader(self):
        """The package's own reader must see what was written, and dequantise it to the same floats."""
        r = gguf.GGUFReader(self.path)
        by_name = {t.name: t for t in r.tensors}
        for e in self.tensors:
            t = by_name[e["name"]]
            assert t.tensor_type.name == e["type"], (e["name"], t.tensor_type.name)
            assert [int(x) for x in t.shape] == e["ne"], (e["name"], t.shape, e["ne"])
            if e["ref_source"] == "gguf.quants.dequantize":
                again = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(-1)
                ref = np.fromfile(os.path.join(self.out, e["ref"]), dtype="<f4")
                assert again.view(np.uint32).tobytes() == ref.view(np.uint32).tobytes(), e["name"]


def types_file(out, rng):
    f = Fixture(out, "types_v3.gguf")
    f.add_kv("general.name", "gguf type fixtures", V.STRING)
    # plain types
    special = np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, 1e-40, 3.4e38], dtype=np.float32)
    f32 = rng.standard_normal((7, 33)).astype(np.float32)
    f32.reshape(-1)[:special.size] = special
    f.add_tensor("f32", T.F32, f32, "gguf.quants.dequantize")
    f.add_tensor("f32_1d", T.F32, rng.standard_normal(576).astype(np.float32), "gguf.quants.dequantize")
    all16 = np.arange(65536, dtype=np.uint32).astype(np.uint16).reshape(256, 256)
    f.add_tensor("f16_all_bits", T.F16, all16.view(np.float16), "gguf.quants.dequantize")
    f.add_tensor("bf16_all_bits", T.BF16, all16.view(np.uint8).reshape(256, 512), "gguf.quants.dequantize")
    f.add_tensor("f64", T.F64, rng.standard_normal((3, 5)) * 1e3, "numpy")
    f.add_tensor("i8", T.I8, rng.integers(-128, 128, size=(4, 16), dtype=np.int8), "numpy")
    f.add_tensor("i16", T.I16, rng.integers(-2**15, 2**15, size=(2, 8), dtype=np.int16), "numpy")
    f.add_tensor("i32", T.I32, rng.integers(-2**31, 2**31, size=(3, 4), dtype=np.int32), "numpy")
    f.add_tensor("i64", T.I64, rng.integers(-2**62, 2**62, size=(5,), dtype=np.int64), "numpy")
    # quantised from real data by the package
    for q in QUANTISABLE:
        block = GGML_QUANT_SIZES[q][0]
        cols = {1: 64, 32: 96}.get(block, block)
        x = rng.standard_normal((5, cols)).astype(np.float32)
        x[0, :] = 0.0  # an all-zero row (zero scales)
        f.add_tensor(f"quant_{q.name.lower()}", q, gguf.quants.quantize(x, q), "gguf.quants.dequantize")
    # random raw blocks, in 2-, 3- and 4-D shapes
    for q in RAW_SUPPORTED:
        block = GGML_QUANT_SIZES[q][0]
        src = "numpy" if q == T.Q8_K else "gguf.quants.dequantize"
        if block == 256:
            f.add_tensor(f"raw_{q.name.lower()}", q, random_blocks(rng, q, (3, 512)), src)
            f.add_tensor(f"raw4d_{q.name.lower()}", q, random_blocks(rng, q, (2, 1, 2, 256)), src)
        else:
            f.add_tensor(f"raw_{q.name.lower()}", q, random_blocks(rng, q, (4, 3, 64)), src)
    for q in UNSUPPORTED:
        block = GGML_QUANT_SIZES[q][0]
        f.add_tensor(f"unsupported_{q.name.lower()}", q, random_blocks(rng, q, (2, max(block, 256))), None)
    return f.close()


def meta_file(out, rng):
    f = Fixture(out, "meta_v3.gguf", alignment=64)
    f.add_kv("t.u8", 200, V.UINT8)
    f.add_kv("t.i8", -100, V.INT8)
    f.add_kv("t.u16", 60000, V.UINT16)
    f.add_kv("t.i16", -30000, V.INT16)
    f.add_kv("t.u32", 4000000000, V.UINT32)
    f.add_kv("t.i32", -2000000000, V.INT32)
    f.add_kv("t.f32", 1e-5, V.FLOAT32, expected=float(np.float32(1e-5)))
    f.add_kv("t.bool_true", True, V.BOOL)
    f.add_kv("t.bool_false", False, V.BOOL)
    f.add_kv("t.str", "héllo \"wörld\"\n{% chat %}", V.STRING)
    f.add_kv("t.u64", 2**63 + 5, V.UINT64)
    f.add_kv("t.i64", -(2**62) - 3, V.INT64)
    f.add_kv("t.f64", 0.1, V.FLOAT64)
    f.add_kv("t.arr_u8", [0, 1, 255], V.ARRAY, sub_type=V.UINT8)
    f.add_kv("t.arr_i8", [-128, 0, 127], V.ARRAY, sub_type=V.INT8)
    f.add_kv("t.arr_u16", [1, 65535], V.ARRAY, sub_type=V.UINT16)
    f.add_kv("t.arr_i16", [-32768, 32767], V.ARRAY, sub_type=V.INT16)
    f.add_kv("t.arr_u32", [7, 4294967295], V.ARRAY, sub_type=V.UINT32)
    f.add_kv("t.arr_i32", [3, 3, 1, -1], V.ARRAY, sub_type=V.INT32)
    f.add_kv("t.arr_u64", [0, 2**64 - 1], V.ARRAY, sub_type=V.UINT64)
    f.add_kv("t.arr_i64", [-(2**63), 2**63 - 1], V.ARRAY, sub_type=V.INT64)
    scores = [float(np.float32(v)) for v in rng.standard_normal(6)]
    f.add_kv("t.arr_f32", scores, V.ARRAY, sub_type=V.FLOAT32)
    f.add_kv("t.arr_f64", [0.1, -1e300], V.ARRAY, sub_type=V.FLOAT64)
    f.add_kv("t.arr_bool", [True, False, True], V.ARRAY, sub_type=V.BOOL)
    f.add_kv("t.arr_str", ["<|endoftext|>", "", "Ġt he", "日本語", "a\u0000b"], V.ARRAY, sub_type=V.STRING)
    f.add_kv("t.arr_nested", [[1, 2, 3], [4], [5, 6]], V.ARRAY)
    f.add_kv("t.arr_nested_str", [["a", "b"], ["c"]], V.ARRAY)
    # tokenizer-shaped keys, as llama.cpp writes them
    f.add_kv("tokenizer.ggml.model", "gpt2", V.STRING)
    f.add_kv("tokenizer.ggml.tokens", ["a", "b", "ab", "<s>"], V.ARRAY, sub_type=V.STRING)
    f.add_kv("tokenizer.ggml.token_type", [1, 1, 1, 3], V.ARRAY, sub_type=V.INT32)
    f.add_kv("tokenizer.ggml.merges", ["a b"], V.ARRAY, sub_type=V.STRING)
    f.add_kv("tokenizer.ggml.bos_token_id", 3, V.UINT32)
    f.add_tensor("token_embd.weight", T.F32, rng.standard_normal((4, 8)).astype(np.float32), "gguf.quants.dequantize")
    f.add_tensor("blk.0.attn_q.weight", T.Q8_0,
                 gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32), T.Q8_0), "gguf.quants.dequantize")
    return f.close()


def v2_file(out, rng):
    f = Fixture(out, "small_v2.gguf")
    f.add_kv("llama.block_count", 2, V.UINT32)
    f.add_kv("tokenizer.ggml.tokens", ["x", "y"], V.ARRAY, sub_type=V.STRING)
    f.add_tensor("output_norm.weight", T.F32, rng.standard_normal(32).astype(np.float32), "gguf.quants.dequantize")
    f.add_tensor("output.weight", T.Q4_0,
                 gguf.quants.quantize(rng.standard_normal((3, 64)).astype(np.float32), T.Q4_0), "gguf.quants.dequantize")
    entry = f.close()
    with open(f.path, "r+b") as fh:  # the version field follows the magic
        head = fh.read(8)
        assert head[:4] == b"GGUF" and struct.unpack("<I", head[4:])[0] == 3
        fh.seek(4)
        fh.write(struct.pack("<I", 2))
    entry["version"] = 2
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    files = [types_file(args.out, rng), meta_file(args.out, rng), v2_file(args.out, rng)]
    manifest = {"gguf_package": getattr(gguf, "__version__", None) or package_version(), "numpy": np.__version__,
                "files": files}
    tmp = os.path.join(args.out, "manifest.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1, ensure_ascii=False)
    os.replace(tmp, os.path.join(args.out, "manifest.json"))
    n = sum(len(f["tensors"]) for f in files)
    n_ref = sum(1 for f in files for t in f["tensors"] if t["ref"])
    print(f"gguf_fixtures: {len(files)} files, {n} tensors ({n_ref} with references) in {args.out}")


def package_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # noqa: BLE001
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
