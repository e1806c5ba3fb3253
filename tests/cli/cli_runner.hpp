#pragma once
// Runs the real moesim binary (path from $MOESIM_BINARY, set by ctest) and
// captures its exit code, stdout and stderr.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace moesim::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string moesim_binary() {
  const char* b = std::getenv("MOESIM_BINARY");
  return b != nullptr ? b : "build/moesim";
}

inline std::string source_dir() {
  const char* s = std::getenv("MOESIM_SOURCE_DIR");
  return s != nullptr ? s : ".";
}

/// Runs `moesim <args>` through the shell (args are shell words).
inline CliResult run_moesim(const std::string& args) {
  char out_tmpl[] = "/tmp/moesim_cli_out_XXXXXX";
  char err_tmpl[] = "/tmp/moesim_cli_err_XXXXXX";
  const int fo = mkstemp(out_tmpl);
  const int fe = mkstemp(err_tmpl);
  close(fo);
  close(fe);
  const std::string cmd = moesim_binary() + " " + args + " >" + out_tmpl + " 2>" + err_tmpl + " </dev/null";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_tmpl);
  r.err = read_file(err_tmpl);
  std::remove(out_tmpl);
  std::remove(err_tmpl);
  return r;
}

}  // namespace moesim::testing
