// The C interface of librlhf_sentencepiece.so, a thin wrapper around libsentencepiece.
//
// Why a separate library: Debian's libsentencepiece embeds its own protobuf (3.14) and exports
// it, while libtorch uses the system libprotobuf (3.21); in one symbol namespace whichever loads
// second binds to the other's copy and aborts. rlhf therefore never links libsentencepiece: it
// dlopens this wrapper with RTLD_LOCAL | RTLD_DEEPBIND when a tokenizer.model is loaded, so that
// libsentencepiece binds to its own protobuf and libtorch's stays untouched. Only plain C types
// cross the boundary.
#pragma once
#include <cstddef>
#include <cstdint>

extern "C" {

// Receives a byte string (a piece, decoded text, an error message).
typedef void (*RlhfSpmTextSink)(void* ctx, const char* data, size_t size);
// Receives one token of an encoding: id and the input bytes [begin, end) it covers.
typedef void (*RlhfSpmTokenSink)(void* ctx, int id, uint32_t begin, uint32_t end);

struct RlhfSpmApi {
  // A processor for a serialized ModelProto, or null (the reason goes to `error`).
  void* (*load)(const char* model, size_t size, RlhfSpmTextSink error, void* ctx);
  void (*release)(void* sp);
  int (*piece_size)(const void* sp);
  int (*piece_to_id)(const void* sp, const char* piece, size_t size);  // unk id when unknown
  void (*id_to_piece)(const void* sp, int id, RlhfSpmTextSink out, void* ctx);
  int (*is_control)(const void* sp, int id);
  int (*is_unknown)(const void* sp, int id);
  int (*unk_id)(const void* sp);
  int (*bos_id)(const void* sp);  // -1 when the model has none
  int (*eos_id)(const void* sp);
  int (*pad_id)(const void* sp);
  void (*encode)(const void* sp, const char* text, size_t size, RlhfSpmTokenSink out, void* ctx);
  void (*decode)(const void* sp, const int* ids, size_t n, RlhfSpmTextSink out, void* ctx);
};

// The library's one exported symbol.
const RlhfSpmApi* rlhf_spm_api();
}
