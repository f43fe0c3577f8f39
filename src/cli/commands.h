// Every subcommand is one add_<name>() that declares its options on the CLI11 app and returns the
// function that runs it. main.cpp lists them; nothing else is registered anywhere.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace rlhf::cli {

struct Command {
  CLI::App* app;
  std::function<void()> run;
};

Command add_env(CLI::App& root);
Command add_init(CLI::App& root);
Command add_convert(CLI::App& root);
Command add_logprobs(CLI::App& root);
Command add_tokenize(CLI::App& root);
Command add_tokenizer(CLI::App& root);
Command add_generate(CLI::App& root);
Command add_sft(CLI::App& root);
Command add_pretrain(CLI::App& root);
Command add_merge(CLI::App& root);
Command add_rm(CLI::App& root);
Command add_score(CLI::App& root);
Command add_dpo(CLI::App& root);
Command add_ppo(CLI::App& root);
Command add_grpo(CLI::App& root);
Command add_rloo(CLI::App& root);
Command add_world(CLI::App& root);
Command add_pipeline(CLI::App& root);
Command add_eval(CLI::App& root);
Command add_demo(CLI::App& root);
Command add_chat_template(CLI::App& root);
Command add_label(CLI::App& root);
Command add_judge(CLI::App& root);
Command add_cai(CLI::App& root);

// --chat-template NAME and --chat-template-path FILE (both into `spec`, which ChatTemplate::for_tokenizer
// takes) and --date YYYY-MM-DD (strftime_now's date for every render); `what` prefixes the help text.
void add_chat_template_options(CLI::App* app, std::string& spec, const std::string& what);

// "5,17,300" -> {5, 17, 300}; errors name the option.
std::vector<int64_t> parse_id_list(const std::string& text, const std::string& option);

// For a command line CLI11 refused: the first --option that the named subcommand (and the global
// options) do not have, with the closest one ("--learning-rat is not an option of `rlhf sft`; did you
// mean --learning-rate?"); "" when every option is known (the error is another one).
std::string unknown_option_message(const CLI::App& root, const std::vector<std::string>& args);

}  // namespace rlhf::cli
