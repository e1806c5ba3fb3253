#include "analysis/claims_options.hpp"

#include <string>

#include "analysis/claims.hpp"

namespace moesim {
namespace {

OptionType option_type(ClaimValueType t) {
  switch (t) {
    case ClaimValueType::kBytes: return OptionType::kBytes;
    case ClaimValueType::kBool: return OptionType::kBool;
    case ClaimValueType::kPercent: return OptionType::kString;  // "95" or "95%"
    case ClaimValueType::kCount:
    case ClaimValueType::kSeconds:
    case ClaimValueType::kRate: return OptionType::kDouble;
  }
  return OptionType::kString;
}

OptionSpec claim_option(const ClaimKind& k, const std::string& suffix, const std::string& what) {
  OptionSpec s;
  s.name = "claims." + std::string(k.key) + suffix;
  s.type = option_type(k.type);
  s.unit = std::string(k.unit);
  s.help = what + std::string(k.help);
  if (s.type == OptionType::kDouble || s.type == OptionType::kBytes) s.min = 0.0;
  return s;
}

OptionSpec string_option(std::string name, std::string def, std::string help) {
  OptionSpec s;
  s.name = std::move(name);
  s.type = OptionType::kString;
  s.default_value = std::move(def);
  s.help = std::move(help);
  return s;
}

}  // namespace

void register_claims_options(OptionRegistry& r) {
  for (const ClaimKind& k : claim_kinds()) {
    r.add(claim_option(k, "", "Claimed: "));
    OptionSpec tol = string_option(
        "claims." + std::string(k.key) + "_tolerance", "",
        "Tolerance of claims." + std::string(k.key) + " (and its _review/_target): " +
            (k.type == ClaimValueType::kBool ? std::string("'10%' of the best plan's throughput.")
                                             : "'10%' relative, or an amount in " + std::string(k.unit) + "."));
    r.add(tol);
    if (k.category == ClaimCategory::kArithmetic || k.category == ClaimCategory::kMemory) {
      r.add(claim_option(k, "_review",
                         "A second figure for the same quantity of the same plan (a correction's 'requires ...', or "
                         "another figure in the same document): "));
    }
    if (k.category == ClaimCategory::kPerformance) {
      r.add(claim_option(k, "_target", "A requirement the document says the plan meets: "));
    }
  }
  r.add(string_option("claims.tolerance", "5%",
                      "Default tolerance of memory, performance and model-size claims: 'N%' of the claimed value."));
  r.add({.name = "claims.statistic", .type = OptionType::kChoice, .unit = "", .default_value = "mean",
         .help = "Which statistic TTFT, TPOT and serving-latency claims are compared with.", .min = {}, .max = {},
         .choices = {"mean", "p50", "p90", "p99"}});
  r.add({.name = "claims.sensitivity", .type = OptionType::kBool, .unit = "", .default_value = "true",
         .help = "Vary each assumed input over its stated range and report which would flip a performance verdict.",
         .min = {}, .max = {}, .choices = {}});
  r.add(string_option("assumptions.document", "",
                      "Scenario keys whose values the document states (comma-separated), e.g. model.layers, strategy.tp."));
  r.add(string_option("assumptions.assumed", "",
                      "Scenario keys the scenario had to assume (comma-separated); justify each in a comment."));
}

}  // namespace moesim
