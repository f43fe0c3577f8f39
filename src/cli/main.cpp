// The rlhf executable: parses the command line, sets up the runtime for this machine, runs one
// subcommand. The only place that catches errors: it prints one line and exits non-zero.
#include <c10/util/Exception.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/config_file.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"

namespace {

// The out-of-memory line: what the process was doing (see rlhf::Activity) and advice that fits it.
std::string out_of_memory_message() {
  const std::string act = rlhf::Activity::current();
  const uint64_t avail = rlhf::available_memory_bytes();
  std::string gb = avail == UINT64_MAX ? std::string("the")
                                       : std::to_string(int64_t(double(avail) / 1e8) / 10.0).substr(0, 5) + " GB of";
  std::string advice;
  if (act.rfind("training", 0) == 0)
    advice = "lower --micro-batch-size or --max-length, or use --gradient-checkpointing or --lora";
  else if (act.rfind("generating", 0) == 0)
    advice = "lower --batch-rows or --max-new-tokens";
  else if (act.rfind("reading", 0) == 0 || act.rfind("loading", 0) == 0)
    advice = "the input needs more than " + gb + " memory available; check that it is the file you meant";
  else
    advice = "free memory (" + gb + " memory was available) or use smaller inputs";
  return "out of memory" + (act.empty() ? std::string() : " while " + act) + "; " + advice;
}

}  // namespace

int main(int argc, char** argv) {
  rlhf::fix_blas_kernel_or_reexec(argv);
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG and the usual "write failed"
  // line, instead of the kernel ending the process silently with SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);

  CLI::App app{"rlhf: supervised fine-tuning, reward models, PPO/GRPO/RLOO and DPO for Hugging Face\n"
               "causal language models, in one native binary.",
               "rlhf"};
  app.require_subcommand(1);
  app.fallthrough();
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // --config values, then overrides
  app.set_version_flag("--version", "rlhf 0.1.0");
  rlhf::RuntimeOptions ro;
  bool quiet = false, verbose = false;
  app.add_option("--threads", ro.threads, "CPU threads (0 = all usable cores)")->capture_default_str();
  app.add_option("--device", ro.device, "cpu | cuda | cuda:N (default: $RLHF_DEVICE, else cpu)")
      ->envname("RLHF_DEVICE")
      ->capture_default_str();
  app.add_option("--dtype", ro.dtype, "compute dtype: fp32 | bf16 (bf16 autocast; weights stay fp32)")
      ->capture_default_str();
  app.add_flag_callback("--bf16", [&ro] { ro.dtype = "bf16"; }, "the same as --dtype bf16 (transformers' name)");
  app.add_flag("-q,--quiet", quiet, "only warnings and errors on stderr");
  app.add_flag("-v,--verbose", verbose, "debug output; errors show their source location");

  std::vector<rlhf::cli::Command> commands = {
      rlhf::cli::add_env(app),
      rlhf::cli::add_init(app),
      rlhf::cli::add_convert(app),
      rlhf::cli::add_logprobs(app),
      rlhf::cli::add_tokenize(app),
      rlhf::cli::add_tokenizer(app),
      rlhf::cli::add_generate(app),
      rlhf::cli::add_sft(app),
      rlhf::cli::add_pretrain(app),
      rlhf::cli::add_merge(app),
      rlhf::cli::add_rm(app),
      rlhf::cli::add_score(app),
      rlhf::cli::add_dpo(app),
      rlhf::cli::add_ppo(app),
      rlhf::cli::add_grpo(app),
      rlhf::cli::add_rloo(app),
      rlhf::cli::add_world(app),
      rlhf::cli::add_eval(app),
      rlhf::cli::add_pipeline(app),
      rlhf::cli::add_demo(app),
      rlhf::cli::add_chat_template(app),
      rlhf::cli::add_label(app),
      rlhf::cli::add_judge(app),
      rlhf::cli::add_cai(app),
  };

  std::vector<std::string> args(argv + 1, argv + argc);
  // Hugging Face's argument parser spells options with underscores (--learning_rate): the same here.
  for (auto& a : args)
    if (a.size() > 2 && a.rfind("--", 0) == 0)
      std::replace(a.begin(), a.begin() + long(a.find('=') == std::string::npos ? a.size() : a.find('=')), '_', '-');
  try {
    args = rlhf::cli::expand_config_args(app, args);
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes the vector back to front
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // An unknown option is the likelier mistake behind any parse error ("--polcy x" also leaves
    // --policy missing): name it, with the closest option.
    if (std::string m = rlhf::cli::unknown_option_message(app, args); !m.empty()) {
      std::fprintf(stderr, "error: %s\n", m.c_str());
      return e.get_exit_code();
    }
    // One line, like every other error, naming where the options are listed.
    std::string help = "rlhf";
    for (const CLI::App* sub = &app; sub;) {
      const CLI::App* next = nullptr;
      for (const CLI::App* s : sub->get_subcommands())
        if (s->parsed()) next = s;
      if (next) help += " " + next->get_name();
      sub = next;
    }
    std::fprintf(stderr, "error: %s (see `%s --help`)\n", e.what(), help.c_str());
    return e.get_exit_code();
  } catch (const rlhf::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }

  try {
    rlhf::set_log_level(verbose ? rlhf::LogLevel::Debug : quiet ? rlhf::LogLevel::Warn : rlhf::LogLevel::Info);
    rlhf::init_runtime(ro);
    rlhf::log_debug(rlhf::runtime().summary());
    for (auto& c : commands) {
      if (c.app->parsed()) c.run();
    }
  } catch (const rlhf::Error& e) {
    if (verbose) std::fprintf(stderr, "error: %s [%s:%d]\n", e.what(), e.file, e.line);
    else std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    msg = msg.substr(0, msg.find('\n'));
    if (msg.find("can't allocate memory") != std::string::npos || msg.find("out of memory") != std::string::npos)
      std::fprintf(stderr, "error: %s (%s)\n", out_of_memory_message().c_str(), msg.c_str());
    else
      std::fprintf(stderr, "error: libtorch: %s\n", msg.c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: %s\n", out_of_memory_message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
