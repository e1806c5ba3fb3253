#pragma once
// Shared fixtures of the plan-builder tests: a small MoE model and a
// communication backend whose collectives take no time.

#include <utility>

#include "sim/communication.hpp"
#include "sim/simulator.hpp"
#include "workloads/model_spec.hpp"

namespace moesim::test {

/// Every collective completes at once (in a zero-delay event, as a backend
/// must): "zero-cost communication".
class ZeroCostBackend : public CommunicationBackend {
 public:
  explicit ZeroCostBackend(Simulator& sim) : sim_(&sim) {}
  void start(CollectiveRequest, Completion on_complete) override {
    ++started;
    sim_->schedule_in(Duration::zero(), [cb = std::move(on_complete)]() mutable { cb(CollectiveResult{}); });
  }
  std::size_t started = 0;

 private:
  Simulator* sim_;
};

/// A toy MoE: `layers` layers (the first `dense` of them dense), hidden 1024,
/// 8 heads (GQA, 8 KV heads of 128), 8 experts of width 1024, top-2, a tiny
/// vocabulary so that embedding and LM head weigh little.
inline ModelSpec toy_moe(std::int64_t layers, std::int64_t dense = 0) {
  ModelSpec m;
  m.name = "toy-moe";
  m.layers = layers;
  m.hidden = 1024;
  m.heads = 8;
  m.kv_heads = 8;
  m.head_dim = 128;
  m.expert_ffn = 1024;
  m.experts = 8;
  m.top_k = 2;
  m.dense_layers = dense;
  m.dense_ffn = 4096;
  m.vocab = 256;
  return m;
}

}  // namespace moesim::test
