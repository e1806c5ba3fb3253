#include "topology/collective_bench.hpp"

#include <cmath>
#include <sstream>
#include <string>

#include "sim/options.hpp"  // InputError
#include "sim/simulator.hpp"
#include "topology/collectives.hpp"

namespace moesim {

std::size_t dtype_size(std::string_view dtype) {
  if (dtype == "int8" || dtype == "uint8") return 1;
  if (dtype == "half" || dtype == "float16" || dtype == "bfloat16") return 2;
  if (dtype == "float" || dtype == "float32" || dtype == "int32" || dtype == "uint32") return 4;
  if (dtype == "double" || dtype == "float64" || dtype == "int64" || dtype == "uint64") return 8;
  throw InputError("unknown data type '" + std::string(dtype) +
                   "'; use one of int8, uint8, half, float16, bfloat16, float, float32, int32, uint32, double, "
                   "float64, int64, uint64");
}

std::vector<Bytes> bench_sizes(Bytes min_bytes, Bytes max_bytes, double factor) {
  if (min_bytes.count() < 0 || max_bytes.count() < 0) throw InputError("message sizes must be >= 0");
  if (min_bytes > max_bytes) {
    throw InputError("--min-bytes (" + std::to_string(min_bytes.count()) + ") is larger than --max-bytes (" +
                     std::to_string(max_bytes.count()) + ")");
  }
  std::vector<Bytes> sizes{min_bytes};
  if (min_bytes == max_bytes) return sizes;
  if (!(factor > 1.0) || !std::isfinite(factor)) {
    std::ostringstream text;
    text << factor;
    throw InputError("--factor must be > 1 to grow from --min-bytes to --max-bytes, got " + text.str());
  }
  if (min_bytes.count() == 0) {
    throw InputError("--min-bytes 0 cannot grow by a factor; give a positive --min-bytes");
  }
  for (;;) {
    const double next = std::floor(sizes.back().as_double() * factor);
    if (next > max_bytes.as_double()) break;
    // Factors close to 1 may not move small sizes: always advance by a byte.
    const auto n = std::max(static_cast<std::int64_t>(next), sizes.back().count() + 1);
    if (n > max_bytes.count()) break;
    sizes.emplace_back(n);
    if (sizes.size() > 4096) {
      throw InputError("more than 4096 message sizes between --min-bytes and --max-bytes; use a larger --factor");
    }
  }
  return sizes;
}

std::vector<GpuId> bench_group(const Topology& topology, std::int32_t gpus) {
  const std::int32_t have = topology.gpu_count();
  if (gpus < 0) throw InputError("--gpus must be >= 1, got " + std::to_string(gpus));
  if (gpus > have) {
    const std::int32_t nodes = topology.node_count();
    throw InputError("--gpus " + std::to_string(gpus) + " is more than the " + std::to_string(have) +
                     " GPUs of topology '" + topology.name + "' (" + std::to_string(nodes) +
                     (nodes == 1 ? " node" : " nodes") + "); ask for at most " + std::to_string(have) +
                     " GPUs or add nodes with --topology.nodes=N");
  }
  const std::int32_t n = gpus == 0 ? have : gpus;
  std::vector<GpuId> group;
  group.reserve(static_cast<std::size_t>(n));
  for (GpuId g = 0; g < n; ++g) group.push_back(g);
  return group;
}

CollectiveBenchRow run_collective_size(const Topology& topology, const NetworkParams& params, CollectiveOp op,
                                       CollectiveAlgorithm algorithm, const std::vector<GpuId>& group, Bytes bytes,
                                       std::size_t element_bytes) {
  const auto n = static_cast<std::int64_t>(group.size());
  const auto w = static_cast<std::int64_t>(element_bytes == 0 ? 1 : element_bytes);
  // nccl-tests rounds a size to whole elements (per rank, when split n ways).
  const bool split = op == CollectiveOp::kAllGather || op == CollectiveOp::kReduceScatter ||
                     op == CollectiveOp::kAllToAll;
  const std::int64_t unit = split ? w * std::max<std::int64_t>(n, 1) : w;
  const Bytes size((bytes.count() / unit) * unit);

  Simulator sim;
  auto network = make_network(params, sim, topology);
  CollectiveEngine engine(sim, *network);
  CollectiveBenchRow row;
  row.bytes = size;
  row.count = size.count() / w;
  std::int64_t pending = 0;
  std::uint64_t transfers = 0;
  const auto done = [&](const CollectiveResult& r) {
    --pending;
    transfers += r.transfers;
  };
  if (op == CollectiveOp::kSendRecv) {
    // nccl-tests sendrecv_perf: rank r sends to r+1 and receives from r-1, all at once.
    for (std::int64_t r = 0; r < n; ++r) {
      CollectiveRequest req;
      req.op = op;
      req.algorithm = algorithm;
      req.group = {group[static_cast<std::size_t>(r)], group[static_cast<std::size_t>((r + 1) % n)]};
      req.bytes = size;
      ++pending;
      engine.start(std::move(req), done);
    }
  } else {
    CollectiveRequest req;
    req.op = op;
    req.algorithm = algorithm;
    req.group = group;
    req.bytes = size;
    ++pending;
    engine.start(std::move(req), done);
  }
  sim.run();
  if (pending != 0) throw std::logic_error("collective bench: a collective did not complete");
  row.time = sim.now() - Time::zero();
  row.transfers = transfers;
  row.network = network->stats();
  const double seconds = row.time.seconds();
  if (seconds > 0.0) {
    row.algbw_GBps = size.as_double() / seconds * 1e-9;
    row.busbw_GBps = row.algbw_GBps * bus_bandwidth_factor(op, static_cast<std::int32_t>(n));
  }
  return row;
}

CollectiveBenchResult run_collective_bench(const Topology& topology, const NetworkParams& params,
                                           const CollectiveBenchConfig& config) {
  CollectiveBenchResult result;
  result.op = config.op;
  result.dtype = config.dtype;
  const std::size_t w = dtype_size(config.dtype);
  const std::vector<GpuId> group = bench_group(topology, config.gpus);
  result.gpus = static_cast<std::int32_t>(group.size());
  if (config.op == CollectiveOp::kAllToAllV) {
    throw InputError("all_to_allv needs a byte matrix; the sweep runs the uniform all_to_all");
  }
  const std::vector<Bytes> sizes = bench_sizes(config.min_bytes, config.max_bytes, config.factor);
  // Resolve (and check) the algorithm once, for the group as a whole.
  CollectiveRequest probe;
  probe.op = config.op;
  probe.algorithm = config.algorithm;
  probe.group = config.op == CollectiveOp::kSendRecv ? std::vector<GpuId>{group[0], group[group.size() > 1 ? 1 : 0]}
                                                     : group;
  if (config.op == CollectiveOp::kSendRecv && group.size() < 2) {
    throw InputError("sendrecv needs --gpus 2 or more (each rank sends to the next)");
  }
  result.algorithm = resolve_algorithm(probe, topology);
  for (const Bytes size : sizes) {
    result.rows.push_back(run_collective_size(topology, params, config.op, config.algorithm, group, size, w));
  }
  return result;
}

}  // namespace moesim
