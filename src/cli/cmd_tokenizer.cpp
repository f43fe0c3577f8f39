// `rlhf tokenizer train`: trains a byte-level BPE tokenizer that Hugging Face loads;
// `rlhf tokenizer info`: what a model directory's tokenizer is and which special tokens it has.
#include <cstdio>

#include "cli/commands.h"
#include "core/fs.h"
#include "core/lock.h"
#include "core/log.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/hf_tokenizer.h"

namespace rlhf::cli {

namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    if (end > begin) out.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

CLI::App* add_train(CLI::App& group, std::function<void()>& run) {
  auto o = std::make_shared<BpeTrainOptions>();
  auto out_dir = std::make_shared<std::string>();
  auto specials = std::make_shared<std::string>("<|endoftext|>");
  auto files = std::make_shared<std::vector<std::string>>();
  auto* app = group.add_subcommand(
      "train", "Train a byte-level BPE tokenizer (HF BpeTrainer's algorithm) and write tokenizer.json + "
               "tokenizer_config.json that Hugging Face AutoTokenizer loads");
  app->add_option("--text", *files, "training text file, read line by line (repeat for several files)")
      ->required()
      ->check(CLI::ExistingFile);
  app->add_option("--vocab-size", o->vocab_size, "vocabulary size: special tokens + 256 bytes + merges")
      ->capture_default_str();
  app->add_option("--out", *out_dir, "output directory (created; files in it are replaced)")->required();
  app->add_option("--special-tokens", *specials, "comma-separated special tokens, given ids 0, 1, ...")
      ->capture_default_str();
  app->add_option("--pattern", o->pattern, "pre-tokenizer split pattern: gpt2 | llama3")->capture_default_str();
  app->add_option("--min-frequency", o->min_frequency, "never merge a pair seen fewer times than this")
      ->capture_default_str();
  app->add_option("--bos-token", o->bos_token, "bos_token in tokenizer_config.json (default: first special token)");
  app->add_option("--eos-token", o->eos_token, "eos_token in tokenizer_config.json (default: first special token)");
  app->add_option("--pad-token", o->pad_token, "pad_token in tokenizer_config.json (default: first special token)");
  run = [o, out_dir, specials, files] {
    o->special_tokens = split_commas(*specials);
    o->text_files.assign(files->begin(), files->end());
    for (const std::string* t : {&o->bos_token, &o->eos_token, &o->pad_token})
      RLHF_CHECK(t->empty() || std::find(o->special_tokens.begin(), o->special_tokens.end(), *t) !=
                                   o->special_tokens.end(),
                 "token \"", *t, "\" is not among --special-tokens; add it there");
    o->show_progress = log_level() <= LogLevel::Info;
    fs::path dir(*out_dir);
    DirLock lock(dir);
    TrainedTokenizer trained = train_bpe(*o);
    HfTokenizer tok(trained.tokenizer_json, (dir / "tokenizer.json").string(), trained.config_json);
    tok.save(dir);
    log_info("wrote ", (dir / "tokenizer.json").string(), ": ", tok.describe());
  };
  return app;
}

CLI::App* add_info(CLI::App& group, std::function<void()>& run) {
  auto path = std::make_shared<std::string>();
  auto* app = group.add_subcommand("info", "Describe a tokenizer: type, size, special tokens, what encode adds");
  app->add_option("--tokenizer", *path, "model directory, tokenizer.json or tokenizer.model")->required();
  run = [path] {
    auto tok = Tokenizer::load(*path);
    auto show = [&](const char* name, const std::string& token, int64_t id) {
      std::printf("%-14s %s\n", name, token.empty() ? "-" : (token + " (" + std::to_string(id) + ")").c_str());
    };
    std::printf("%-14s %s\n", "tokenizer", tok->describe().c_str());
    show("bos", tok->bos_token(), tok->bos_id());
    show("eos", tok->eos_token(), tok->eos_id());
    show("pad", tok->pad_token(), tok->pad_id());
    show("unk", tok->unk_token(), tok->unk_id());
    std::printf("%-14s %s\n", "adds before", Json(tok->special_prefix()).dump().c_str());
    std::printf("%-14s %s\n", "adds after", Json(tok->special_suffix()).dump().c_str());
    std::printf("%-14s %s\n", "chat template", tok->chat_template().empty() ? "no" : "yes");
    int64_t max_length = tok->model_max_length();
    std::printf("%-14s %s\n", "max length", max_length > 0 ? std::to_string(max_length).c_str() : "-");
  };
  return app;
}

}  // namespace

Command add_tokenizer(CLI::App& root) {
  auto* group = root.add_subcommand("tokenizer", "Train or inspect tokenizers");
  group->require_subcommand(1);
  auto train_run = std::make_shared<std::function<void()>>();
  auto info_run = std::make_shared<std::function<void()>>();
  auto* train = add_train(*group, *train_run);
  auto* info = add_info(*group, *info_run);
  return {group, [=] {
            if (train->parsed()) (*train_run)();
            if (info->parsed()) (*info_run)();
          }};
}

}  // namespace rlhf::cli
