// librlhf_sentencepiece.so: libsentencepiece behind the C interface of shim_api.h (see there for
// why this is a library of its own).
#include <sentencepiece_processor.h>

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/sentencepiece_shim/shim_api.h"

namespace {

using sentencepiece::SentencePieceProcessor;

const SentencePieceProcessor& sp_of(const void* sp) { return *static_cast<const SentencePieceProcessor*>(sp); }

void* load(const char* model, size_t size, RlhfSpmTextSink error, void* ctx) {
  auto sp = std::make_unique<SentencePieceProcessor>();
  auto status = sp->LoadFromSerializedProto(std::string_view(model, size));
  if (!status.ok()) {
    std::string message = status.ToString();
    error(ctx, message.data(), message.size());
    return nullptr;
  }
  return sp.release();
}

void release(void* sp) { delete static_cast<SentencePieceProcessor*>(sp); }
int piece_size(const void* sp) { return sp_of(sp).GetPieceSize(); }
int piece_to_id(const void* sp, const char* piece, size_t size) {
  return sp_of(sp).PieceToId(std::string_view(piece, size));
}
void id_to_piece(const void* sp, int id, RlhfSpmTextSink out, void* ctx) {
  const std::string& piece = sp_of(sp).IdToPiece(id);
  out(ctx, piece.data(), piece.size());
}
int is_control(const void* sp, int id) { return sp_of(sp).IsControl(id); }
int is_unknown(const void* sp, int id) { return sp_of(sp).IsUnknown(id); }
int unk_id(const void* sp) { return sp_of(sp).unk_id(); }
int bos_id(const void* sp) { return sp_of(sp).bos_id(); }
int eos_id(const void* sp) { return sp_of(sp).eos_id(); }
int pad_id(const void* sp) { return sp_of(sp).pad_id(); }

void encode(const void* sp, const char* text, size_t size, RlhfSpmTokenSink out, void* ctx) {
  sentencepiece::ImmutableSentencePieceText spt = sp_of(sp).EncodeAsImmutableProto(std::string_view(text, size));
  for (size_t i = 0; i < spt.pieces_size(); ++i) {
    auto piece = spt.pieces(int(i));
    out(ctx, int(piece.id()), piece.begin(), piece.end());
  }
}

void decode(const void* sp, const int* ids, size_t n, RlhfSpmTextSink out, void* ctx) {
  std::string text = sp_of(sp).DecodeIds(std::vector<int>(ids, ids + n));
  out(ctx, text.data(), text.size());
}

const RlhfSpmApi kApi = {load,       release, piece_size, piece_to_id, id_to_piece, is_control, is_unknown,
                         unk_id,     bos_id,  eos_id,     pad_id,      encode,      decode};

}  // namespace

extern "C" __attribute__((visibility("default"))) const RlhfSpmApi* rlhf_spm_api() { return &kApi; }
