// `rlhf convert --from-gguf`: a llama.cpp GGUF file as a Hugging Face model directory (config.json,
// model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json) that every other
// command, and transformers, loads. `--list` prints the file's metadata and tensor table instead.
#include <sys/resource.h>

#include <chrono>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/lock.h"
#include "core/log.h"
#include "io/gguf.h"
#include "io/gguf_convert.h"
#include "io/gguf_tokenizer.h"

namespace rlhf::cli {

namespace {

SaveDtype parse_convert_dtype(const std::string& s) {
  if (s == "fp32") return SaveDtype::F32;
  if (s == "bf16") return SaveDtype::BF16;
  if (s == "fp16") return SaveDtype::F16;
  RLHF_FAIL("--save-dtype '", s, "' is not known; use fp32, bf16 or fp16");
}

}  // namespace

Command add_convert(CLI::App& root) {
  struct Opts {
    std::string gguf, out, save_dtype = "fp32";
    bool overwrite = false, list = false;
  };
  auto o = std::make_shared<Opts>();
  auto* app = root.add_subcommand(
      "convert",
      "Convert a GGUF file (llama.cpp) into a Hugging Face model directory.\n"
      "Architectures: llama (Llama, Mistral, SmolLM), qwen2, gpt2. Tensor types: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1\n"
      "Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K Q8_K IQ4_NL IQ4_XS MXFP4 TQ2_0 (dequantised; the weights are the quantised\n"
      "model's values). Tokenizers: tokenizer.ggml.model gpt2 (byte-level BPE) and llama (SentencePiece BPE).");
  app->add_option("--from-gguf", o->gguf, "the .gguf file to read")->required();
  app->add_option("--out", o->out, "output model directory (required unless --list)");
  app->add_option("--save-dtype", o->save_dtype,
                  "fp32 | bf16 | fp16 on disk (fp32 keeps the dequantised values exactly)")->capture_default_str();
  app->add_flag("--list", o->list, "print the file's metadata and tensor table, write nothing");
  add_overwrite_option(app, o->overwrite);
  return {app, [o] {
            const SaveDtype dt = parse_convert_dtype(o->save_dtype);
            const auto t0 = std::chrono::steady_clock::now();
            GgufFile f(o->gguf);
            if (o->list) {
              std::cout << gguf_listing(f) << std::flush;
              return;
            }
            RLHF_CHECK(!o->out.empty(), "rlhf convert: --out is required (or --list to only show the file)");
            DirLock lock(o->out);
            prepare_model_output_dir(o->out, o->overwrite, /*clear=*/false);  // refuse now, before the work
            // Everything but the weights is built (and so checked) before the old model's files go.
            const Json config = gguf_hf_config(f);
            gguf_tensor_plan(f, config);
            const ModelConfig cfg = ModelConfig::from_json(config, o->gguf);
            gguf_tokenizer_files(f, cfg.vocab_size, cfg.n_ctx);
            prepare_model_output_dir(o->out, o->overwrite);
            GgufConvertOptions opt;
            opt.dtype = dt;
            opt.threads = std::max(1, int(torch::get_num_threads()));
            Activity act("converting " + o->gguf);
            const GgufConvertStats s = convert_gguf(f, o->out, opt);
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            struct rusage ru {};
            getrusage(RUSAGE_SELF, &ru);
            log_info("wrote ", s.describe, " to ", o->out, ": ", s.n_tensors, " tensors, ", s.n_values, " values as ",
                     o->save_dtype, " (", s.bytes_written / 1000000, " MB) in ", format_duration(secs), ", peak RSS ",
                     ru.ru_maxrss / 1024, " MB");
          }};
}

}  // namespace rlhf::cli
