#include "cli/sampling_flags.h"

#include <random>

namespace formiga::cli {

void AddSamplingFlags(CLI::App* cmd, SamplingFlags& f) {
  cmd->add_option("-n,--n-predict", f.n_predict, "tokens to generate at most")->capture_default_str();
  cmd->add_option("--temp", f.temperature, "temperature (0 = greedy)")->capture_default_str();
  cmd->add_option("--top-k", f.top_k, "top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", f.top_p, "top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", f.min_p, "min-p (0 = off)")->capture_default_str();
  cmd->add_option("--typical-p", f.typical_p, "typical-p (1 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", f.repeat_penalty, "repetition penalty (1 = off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", f.repeat_last_n, "tokens the penalties look back (-1 = all)")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", f.presence_penalty, "presence penalty")->capture_default_str();
  cmd->add_option("--frequency-penalty", f.frequency_penalty, "frequency penalty")->capture_default_str();
  cmd->add_option("-s,--seed", f.seed, "random seed (-1 = random); the same seed gives the same text")
      ->capture_default_str();
  cmd->add_option("--stop", f.stop, "stop string (repeatable); not included in the output");
  cmd->add_flag("--ignore-eos", f.ignore_eos, "keep generating past the end-of-text token");
}

Status SamplingFlags::Apply(GenerationRequest& req) {
  if (n_predict <= 0) return Status::InvalidArgument("-n/--n-predict must be positive");
  seed_used = seed >= 0 ? static_cast<uint64_t>(seed) : std::random_device{}();
  SamplingParams& p = req.sampling;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.typical_p = typical_p;
  p.repetition_penalty = repeat_penalty;
  p.penalty_last_n = repeat_last_n;
  p.presence_penalty = presence_penalty;
  p.frequency_penalty = frequency_penalty;
  p.seed = seed_used;
  req.max_tokens = n_predict;
  req.stop = stop;
  req.ignore_eos = ignore_eos;
  return Status::Ok();
}

}  // namespace formiga::cli
