// `rlhf tokenize`: text to token ids with a model's tokenizer, printed as one JSON line (external
// checks compare it with Hugging Face's ids).
#include <cstdio>

#include "cli/commands.h"
#include "core/fs.h"
#include "io/json.h"
#include "tokenizer/tokenizer.h"

namespace rlhf::cli {

Command add_tokenize(CLI::App& root) {
  struct Options {
    std::string tokenizer, text, text_file;
    bool add_special_tokens = false, offsets = false;
  };
  auto o = std::make_shared<Options>();
  auto* app = root.add_subcommand("tokenize", "Print the token ids of a text as a JSON list on one line");
  app->add_option("--tokenizer", o->tokenizer,
                  "model directory with tokenizer.json or tokenizer.model (+ tokenizer_config.json), or the file")
      ->required();
  auto* text = app->add_option("--text", o->text, "the text to tokenize");
  auto* file = app->add_option("--text-file", o->text_file, "read the text to tokenize from this file (UTF-8)");
  text->excludes(file);
  app->add_flag("--add-special-tokens", o->add_special_tokens,
                "add what the model expects around a sequence (e.g. BOS), as HF's add_special_tokens=True");
  app->add_flag("--offsets", o->offsets,
                "print {\"ids\": [...], \"offsets\": [[begin, end], ...]} with byte offsets into the text");
  return {app, [o, text, file] {
            RLHF_CHECK(*text || *file, "tokenize: give the text with --text or --text-file");
            std::string input = *file ? read_file(o->text_file, "--text-file") : o->text;
            auto tok = Tokenizer::load(o->tokenizer);
            Encoding enc = tok->encode_with_offsets(input, o->add_special_tokens);
            Json out = enc.ids;
            if (o->offsets) out = {{"ids", enc.ids}, {"offsets", enc.offsets}};
            std::printf("%s\n", out.dump().c_str());
          }};
}

}  // namespace rlhf::cli
