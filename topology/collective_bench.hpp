#pragma once
// An nccl-tests-like sweep of one collective over message sizes (the logic
// behind `moesim collective`). Each size is simulated alone, on a fresh
// simulator and network: time = first byte issued to last byte delivered;
// algbw = size / time; busbw = algbw x bus_bandwidth_factor(op, n)
// (nccl-tests doc/PERFORMANCE.md). Sizes mean what they mean in nccl-tests:
// all-reduce / broadcast / sendrecv the buffer, all-gather the gathered
// output, reduce-scatter the input, all-to-all each rank's whole send buffer;
// as nccl-tests does, a size is rounded down to a whole number of elements
// (and, for all-gather / reduce-scatter / all-to-all, of elements per rank).
// `sendrecv` is the nccl-tests sendrecv_perf pattern: every rank sends the
// message to rank r+1 and receives from rank r-1, all at once.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/communication.hpp"
#include "sim/units.hpp"
#include "topology/network.hpp"
#include "topology/topology.hpp"

namespace moesim {

struct CollectiveBenchConfig {
  CollectiveOp op = CollectiveOp::kAllReduce;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kAuto;
  std::int32_t gpus = 0;  // 0: every GPU of the topology (ranks are GPUs 0 .. gpus-1)
  Bytes min_bytes = Bytes::mib(1);
  Bytes max_bytes = Bytes::gib(1);
  double factor = 2.0;
  std::string dtype = "float";
};

struct CollectiveBenchRow {
  Bytes bytes;                 // size in the nccl-tests sense (after rounding to elements)
  std::int64_t count = 0;      // elements: bytes / element size
  Duration time;
  double algbw_GBps = 0.0;     // 1 GB/s = 1e9 bytes/s
  double busbw_GBps = 0.0;
  std::uint64_t transfers = 0;
  NetworkStats network;
};

struct CollectiveBenchResult {
  CollectiveOp op = CollectiveOp::kAllReduce;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kAuto;  // as resolved for the group
  std::int32_t gpus = 0;
  std::string dtype;
  std::vector<CollectiveBenchRow> rows;
};

/// Bytes per element of an nccl-tests data type: int8/uint8 1; half/float16/
/// bfloat16 2; float/float32/int32 4; double/float64/int64 8. InputError otherwise.
std::size_t dtype_size(std::string_view dtype);

/// min, min x factor, ... while <= max (nccl-tests -b/-e/-f). InputError for
/// min > max, a negative size, factor <= 1 with min < max, or more than 4096 sizes.
std::vector<Bytes> bench_sizes(Bytes min_bytes, Bytes max_bytes, double factor);

/// The group the sweep uses: GPUs 0 .. gpus-1 (gpus 0 = all). InputError when
/// gpus is negative or more than the topology has.
std::vector<GpuId> bench_group(const Topology& topology, std::int32_t gpus);

/// Simulates one collective of `bytes` on `group` alone and measures it.
CollectiveBenchRow run_collective_size(const Topology& topology, const NetworkParams& params, CollectiveOp op,
                                       CollectiveAlgorithm algorithm, const std::vector<GpuId>& group, Bytes bytes,
                                       std::size_t element_bytes = 1);

/// The whole sweep. Throws InputError on bad parameters (before simulating).
CollectiveBenchResult run_collective_bench(const Topology& topology, const NetworkParams& params,
                                           const CollectiveBenchConfig& config);

}  // namespace moesim
