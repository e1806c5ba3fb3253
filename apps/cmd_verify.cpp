// `moesim verify SCENARIO.ini [--json | --markdown]`: every claim of the
// scenario's [claims] section against what moesim derives (arithmetic, memory)
// and simulates (performance), with a verdict, an explanation and, for the
// performance verdicts, the assumed inputs that would flip them
// (analysis/claims.hpp; docs/verify.md). Exit code 1 when a claim fails.
#include <iostream>

#include "analysis/claims.hpp"
#include "apps/commands.hpp"
#include "apps/strategy_search.hpp"

namespace moesim::cli {

int cmd_verify(const std::vector<std::string>& args) {
  po::options_description desc("Options");
  desc.add_options()("json", "print one JSON document (claims, assumptions, plan)")(
      "markdown", "print the verdict table as GitHub markdown (experiments/seeds/README.md)")(
      "no-sensitivity", "skip the sensitivity analysis (same as --claims.sensitivity=false)");
  const ParsedArgs parsed = parse_command_args("verify", args, desc, 1);
  if (parsed.help) {
    print_command_help("moesim verify SCENARIO.ini [--json | --markdown] [--section.key=value ...]",
                       "Checks every claim of the scenario's [claims] section: arithmetic claims (GPU count under\n"
                       "both conventions, experts per GPU, ...) are derived from the plan, memory claims from the\n"
                       "memory model, performance claims are simulated. Prints claim, claimed, moesim's value,\n"
                       "difference, verdict (holds / fails / unchecked) and why; for performance verdicts, which\n"
                       "assumed input would flip them. Exit code 1 when a claim fails. See docs/verify.md.",
                       desc, true);
    return 0;
  }
  if (parsed.positional.empty()) {
    throw InputError("moesim verify needs a scenario file: moesim verify SCENARIO.ini (see moesim verify --help)");
  }
  const bool json = parsed.vm.count("json") != 0;
  const bool markdown = parsed.vm.count("markdown") != 0;
  if (json && markdown) throw InputError("give either --json or --markdown, not both");

  const Config config = make_config(parsed.positional.front(), parsed.overrides);
  VerifyOptions options;
  options.statistic = config.get_string("claims.statistic");
  options.sensitivity = config.get_bool("claims.sensitivity") && parsed.vm.count("no-sensitivity") == 0;
  options.progress = [](const std::string& what) { std::cerr << "verify: sensitivity run " << what << "\n"; };

  const VerifyReport report = verify_claims(config, &simulate_performance, &best_plan_answer, options);
  if (json) {
    std::cout << verify_report_json(report).dump(2) << "\n";
  } else if (markdown) {
    std::cout << format_verify_markdown(report);
  } else {
    std::cout << format_verify_report(report);
  }
  return report.any_fails() ? 1 : 0;
}

}  // namespace moesim::cli
