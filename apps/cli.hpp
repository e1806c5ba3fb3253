#pragma once
namespace moesim::cli {
/// Entry point of the moesim executable; returns the process exit code
/// (0 success, 1 a verified claim does not hold, 2 bad input or usage).
int main(int argc, char** argv);
}  // namespace moesim::cli
