#pragma once
// Signals in the OMNeT++ manner: models emit, observers (analysis code)
// subscribe. Models never write files; whatever is recorded is recorded by an
// observer connected to a signal. Emitting with no observer costs one branch.

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

namespace moesim {

template <typename... Args>
class Signal {
 public:
  using Slot = std::function<void(const Args&...)>;

  /// Subscribes an observer; returns an id for disconnect().
  std::size_t connect(Slot slot) {
    slots_.push_back(std::move(slot));
    return slots_.size() - 1;
  }
  void disconnect(std::size_t id) {
    if (id < slots_.size()) slots_[id] = nullptr;
  }
  [[nodiscard]] bool connected() const { return !slots_.empty(); }

  void emit(const Args&... args) const {
    if (slots_.empty()) return;
    for (const auto& s : slots_) {
      if (s) s(args...);
    }
  }

 private:
  std::vector<Slot> slots_;
};

}  // namespace moesim
