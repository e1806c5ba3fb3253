#pragma once
// The engine's pending-event set: a ladder queue (W. T. Tang, R. S. M. Goh and
// I. L.-J. Thng, "Ladder Queue: An O(1) priority queue structure for
// large-scale discrete event simulation", ACM TOMACS 15(3):175-204, 2005),
// adapted so that every pass over the keys is sequential and keys stay small.
//
// Keys are unsigned 128-bit integers whose high 64 bits are the event time
// (non-negative picoseconds); the low bits make every key unique and grow with
// each push (the simulator puts the insertion sequence number there). Keys
// come out in increasing order, exactly. A pushed key's time must not be
// before the time of the last popped key (the simulator never schedules into
// the past), so every pushed key is larger than every key popped so far.
//
// The structure, as in the paper:
//   Top     an unsorted array of the far future: every key with time >= top_start.
//   Ladder  up to kMaxRungs rungs. A rung is an array of buckets of equal width;
//           those before `cur` have been dequeued. Rung r + 1 was spawned from
//           one bucket of rung r and covers that bucket's interval from its
//           earliest key on; rung 0 was built from Top and ends at top_start.
//   Bottom  a short sorted array of the nearest keys; popping takes its front.
// The parts partition the time axis: Bottom holds [now, cur_start of the
// deepest rung), each rung [its cur_start, cur_start of the rung above), the
// top rung up to top_start, and Top the rest. A key is pushed into the part
// that holds its time, and an interval only ever moves whole to the part below
// (Top to a new rung 0, a bucket to a new rung or to Bottom, Bottom to a new
// rung), together with its keys. So all keys of one time are always in the same
// part, and since each part dequeues in exact key order, equal times keep
// insertion order. Within a bucket, keys of one time are in insertion order too
// (buckets are appended to, and filled from Top, Bottom or a parent bucket in
// their order), which the small-bucket sort relies on.
//
// Where this deviates from the paper, and why (measured with
// benchmarks/bench_event_queue, the hold model, on the project's 2-core VM;
// see docs/benchmarks.md):
//  - A bucket is a chain of 512-byte chunks of keys from one pool with a LIFO
//    free list, not a linked list of events: reading a bucket streams whole
//    cache lines (prefetched a few chunks ahead), and the chunks a drained
//    bucket frees, still cached, are the next ones written.
//  - Bucket widths are powers of two, so finding a bucket is a subtraction and
//    a shift, not a 64-bit division; and a rung has at most 2^kMaxBucketsLog2
//    buckets. The paper's one bucket per event spreads a million events over a
//    million buckets, so that every push misses the cache; a thousand buckets
//    keep the chunks being filled in cache, and finer resolution comes from
//    spawning rungs, as in the paper. (At 1M pending, 64K buckets per rung ran
//    40 % slower than 1K, 16K 19 % slower, 256 10 % slower.)
//  - A rung spans [smallest, largest] time actually in the bucket or Top it is
//    built from (one extra sequential pass), its last bucket also taking the
//    rest of the parent bucket's interval; a sparse spread (1 ps next to
//    1e15 ps) then needs no chain of nearly empty rungs to get down to the
//    keys. A bucket whose keys all have one time cannot be split, whatever its
//    size: it goes to Bottom as it is (it is already in order). At most 32
//    rungs (the paper: 8; the hold model uses 2 or 3, adversarial spreads of
//    times over 1 ps .. 2^62 ps reached 21); at the limit a bucket goes to
//    Bottom whole, sorted with std::sort (still exact, only slower).
//  - A bucket of at most kSpawnThreshold keys goes to Bottom sorted by a
//    branch-free rank sort on (time, position) (see sort_bottom_tail()); an
//    insertion sort spent most of its time in mispredicted branches and was
//    the largest single cost of the queue (the rank sort made the queue alone
//    45 % faster at 1K pending, 20 % at 1M).
//  - Bottom is refilled while it still holds a few keys, not only when empty,
//    so that the next kLookahead keys are always sorted and the simulator can
//    prefetch their handlers across bucket boundaries.
//  - A push into a long Bottom that would shift many keys on both sides turns
//    Bottom into a new rung instead (the paper does so when Bottom exceeds its
//    threshold); a push into a short Bottom is an insertion from the back.
// Cancelled events are not removed (the simulator skips them when popped), so
// size() counts them until then.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sim/huge_page_allocator.hpp"

namespace moesim {

class LadderQueue {
 public:
  __extension__ using Key = unsigned __int128;

  /// Keys kept sorted ahead of the front (the simulator's prefetch distance).
  static constexpr std::size_t kLookahead = 16;

  LadderQueue();

  static std::uint64_t key_time(Key k) { return static_cast<std::uint64_t>(k >> 64); }

  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] std::size_t size() const { return size_; }

  /// Adds a key: its time must not be before the last popped key's time, and
  /// it must be larger than every key pushed before.
  void push(Key k) {
    route(k);
    ++size_;
  }

  /// The smallest key; the queue must not be empty.
  Key top() {
    if (bhead_ == bottom_.size()) refill();
    return bottom_[bhead_];
  }

  /// Removes and returns the smallest key; the queue must not be empty.
  Key pop() {
    if (bhead_ == bottom_.size()) refill();
    const Key k = bottom_[bhead_++];
    --size_;
    const std::size_t left = bottom_.size() - bhead_;
    if (left < kLookahead) {
      if (size_ > left) {
        refill();
      } else if (left == 0) {
        bottom_.clear();
        bhead_ = 0;
      }
    }
    return k;
  }

  /// The key `i` places after the smallest one, or nullptr when that key is
  /// not in Bottom yet (for i < kLookahead it is, while the queue holds more
  /// than i keys).
  [[nodiscard]] const Key* ahead(std::size_t i) const {
    return bhead_ + i < bottom_.size() ? bottom_.data() + bhead_ + i : nullptr;
  }

 private:
  static constexpr std::uint32_t kChunk = 32;  // keys per chunk (512 bytes); a power of two
  static constexpr std::uint32_t kNil = ~std::uint32_t{0};
  static constexpr std::size_t kMaxRungs = 32;
  static constexpr unsigned kMaxBucketsLog2 = 10;       // at most 1,024 buckets per rung
  static constexpr std::size_t kSpawnThreshold = 32;    // a larger bucket is split into a new rung
  static constexpr std::size_t kLeafTarget = 16;        // keys per bucket aimed at in a spawned rung
  static constexpr std::size_t kTopPerBucket = 2;       // and in a rung built from Top
  static constexpr std::size_t kSmallBottom = 64;       // Bottom insertion from the back up to this
  static constexpr std::size_t kBottomShiftLimit = 256;  // see bottom_insert()
  static constexpr unsigned kRankSortBits = 5;
  static constexpr std::size_t kRankSortMax = std::size_t{1} << kRankSortBits;  // >= kSpawnThreshold

  struct Bucket {
    std::uint32_t first = 0;  // chunk chain, oldest first (valid when count > 0)
    std::uint32_t last = 0;
    std::uint32_t count = 0;
  };

  struct Rung {
    std::uint64_t start = 0;      // lower edge of bucket 0
    std::uint64_t cur_start = 0;  // lower edge of bucket `cur`; `end` once cur == nb
    std::uint64_t end = 0;        // upper edge of the last bucket (saturated)
    std::uint32_t nb = 0;         // buckets in use, >= 1
    std::uint32_t cur = 0;        // first bucket not yet dequeued
    unsigned shift = 0;           // bucket width is 2^shift ps (the last one: up to end)
    std::vector<Bucket> buckets;  // at least nb; all empty outside [cur, nb)

    [[nodiscard]] std::uint32_t index(std::uint64_t t) const {
      const std::uint64_t i = (t - start) >> shift;
      return i < nb - 1 ? static_cast<std::uint32_t>(i) : nb - 1;
    }
  };

  void route(Key k) {
    const std::uint64_t t = key_time(k);
    if (t >= top_start_) {
      top_.push_back(k);
      top_min_ = std::min(top_min_, t);
      top_max_ = std::max(top_max_, t);
      return;
    }
    for (std::size_t r = 0; r < nrungs_; ++r) {
      Rung& g = rungs_[r];
      if (t >= g.cur_start) {
        push_to(g.buckets[g.index(t)], k);
        return;
      }
    }
    bottom_insert(k);
  }

  void push_to(Bucket& b, Key k) {
    const std::uint32_t pos = b.count & (kChunk - 1);
    if (pos == 0) add_chunk(b);
    pool_[std::size_t{b.last} * kChunk + pos] = k;
    ++b.count;
  }

  void add_chunk(Bucket& b);
  void refill();
  void transfer_top();
  void set_cur(Rung& g, std::uint32_t cur);
  void setup_rung(Rung& g, std::uint64_t lo, std::uint64_t hi, std::uint64_t end, unsigned want_log2);
  void spawn(Bucket b, std::uint64_t lo, std::uint64_t hi, std::uint64_t end);
  void bucket_to_bottom(Bucket b);
  void sort_bottom_tail(std::size_t from);
  void bottom_insert(Key k);
  bool bottom_to_rung();
  [[nodiscard]] std::uint64_t bottom_end() const {
    return nrungs_ > 0 ? rungs_[nrungs_ - 1].cur_start : top_start_;
  }
  void prefetch_chunk(std::uint32_t c) const;
  class ChunkPrefetcher;

  // Calls f(key) for each key of a bucket in chain order, returning each chunk
  // to the free list once it has been read (so f may push into other buckets,
  // and reuses the chunks just read, which are cached).
  template <typename F>
  void drain(Bucket b, F&& f);
  // Smallest and largest time in a bucket (reads it without changing it).
  void time_range(const Bucket& b, std::uint64_t& lo, std::uint64_t& hi) const;

  std::vector<Key, HugePageAllocator<Key>> top_;
  std::uint64_t top_start_ = 0;
  std::uint64_t top_min_ = ~std::uint64_t{0};
  std::uint64_t top_max_ = 0;

  std::array<Rung, kMaxRungs> rungs_{};
  std::size_t nrungs_ = 0;

  std::vector<Key, HugePageAllocator<Key>> bottom_;  // sorted from bhead_ on
  std::size_t bhead_ = 0;

  std::vector<Key, HugePageAllocator<Key>> pool_;  // chunk c holds keys [c * kChunk, (c + 1) * kChunk)
  std::vector<std::uint32_t> next_;                // next chunk of a bucket's chain or of the free list
  std::uint32_t free_head_ = kNil;

  std::size_t size_ = 0;
};

}  // namespace moesim
