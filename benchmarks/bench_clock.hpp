#pragma once
// CPU time of the calling thread, for benchmarks that report events per CPU
// second (steadier than wall time on a shared machine).
#include <ctime>

namespace moesim::bench {

inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace moesim::bench
