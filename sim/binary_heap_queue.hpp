#pragma once
// The textbook priority queue for a discrete-event engine: an implicit binary
// min-heap of the same 128-bit keys as LadderQueue (time in the high half, a
// unique, growing sequence below), so it pops exactly the same order. The
// engine uses LadderQueue (sim/ladder_queue.hpp): at a million pending events
// each of the heap's ~20 levels is a likely cache miss, and the hold model
// runs about five times slower (benchmarks/bench_event_queue prints both
// queues side by side). Kept as the reference the ladder queue is measured
// and tested against (tests/sim/test_engine.cpp).
#include <cstddef>
#include <vector>

namespace moesim {

class BinaryHeapQueue {
 public:
  __extension__ using Key = unsigned __int128;

  void push(Key k) {
    heap_.push_back(k);
    std::size_t i = heap_.size() - 1;
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!(k < heap_[parent])) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = k;
  }

  /// Removes and returns the smallest key; the queue must not be empty.
  Key pop() {
    const Key top = heap_.front();
    const Key last = heap_.back();
    heap_.pop_back();
    const std::size_t n = heap_.size();
    if (n == 0) return top;
    std::size_t i = 0;
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap_[child + 1] < heap_[child]) ++child;
      if (!(heap_[child] < last)) break;
      heap_[i] = heap_[child];
      i = child;
    }
    heap_[i] = last;
    return top;
  }

  [[nodiscard]] const Key& top() const { return heap_.front(); }
  [[nodiscard]] bool empty() const { return heap_.empty(); }
  [[nodiscard]] std::size_t size() const { return heap_.size(); }

 private:
  std::vector<Key> heap_;
};

}  // namespace moesim
