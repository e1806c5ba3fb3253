#include "sim/ladder_queue.hpp"

#include <bit>
#include <limits>
#include <stdexcept>

namespace moesim {

namespace {

constexpr std::uint64_t kNoTime = std::numeric_limits<std::uint64_t>::max();

// A bucket's key count is 32-bit; refuse to grow one past it.
constexpr std::uint32_t kMaxBucketKeys = std::numeric_limits<std::uint32_t>::max() - 64;

// Chunks fetched ahead of the one being read when a bucket is walked.
constexpr std::uint32_t kPrefetchChunks = 4;

// lo + n * 2^shift, saturated to the largest uint64 (which no key time
// reaches: times are non-negative int64 picoseconds).
std::uint64_t saturated_edge(std::uint64_t lo, std::uint64_t n, unsigned shift) {
  __extension__ using U128 = unsigned __int128;
  const U128 e = static_cast<U128>(lo) + (static_cast<U128>(n) << shift);
  return e > static_cast<U128>(kNoTime) ? kNoTime : static_cast<std::uint64_t>(e);
}

// log2 of the bucket count aimed at for `count` keys at `per_bucket` keys each.
unsigned buckets_log2(std::size_t count, std::size_t per_bucket, unsigned max_log2) {
  const auto want = static_cast<unsigned>(std::bit_width((count - 1) / per_bucket));
  return std::clamp(want, 1U, max_log2);
}

// Sorts the n <= M keys at `first`, whose times lie in [lo, lo + 2^(32 - b))
// with b = log2(M), by (time, position): each key's rank is the number of keys
// before it in that order. The compares are 32-bit and the inner loop has a
// fixed trip count, so the compiler makes it a few SIMD compares (SSE2 is
// enough) and nothing in it can be mispredicted.
template <std::size_t M>
void rank_sort(LadderQueue::Key* first, std::size_t n, std::uint64_t lo) {
  constexpr auto kBits = static_cast<unsigned>(std::bit_width(M - 1));
  std::uint32_t c[M];
  LadderQueue::Key tmp[M];
  for (std::size_t i = 0; i < n; ++i) {
    c[i] = static_cast<std::uint32_t>(((LadderQueue::key_time(first[i]) - lo) << kBits) | i);
    tmp[i] = first[i];
  }
  for (std::size_t i = n; i < M; ++i) c[i] = ~std::uint32_t{0};
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t ci = c[i];
    std::uint32_t rank = 0;
    for (std::size_t j = 0; j < M; ++j) rank += c[j] < ci ? 1U : 0U;
    first[rank] = tmp[i];
  }
}

}  // namespace

LadderQueue::LadderQueue() {
  top_.reserve(256);
  bottom_.reserve(256);
}

void LadderQueue::add_chunk(Bucket& b) {
  if (b.count > kMaxBucketKeys) throw std::length_error("ladder queue: too many events at once");
  std::uint32_t c = free_head_;
  if (c != kNil) {
    free_head_ = next_[c];
  } else {
    if (next_.size() >= kNil) throw std::length_error("ladder queue: too many events at once");
    c = static_cast<std::uint32_t>(next_.size());
    pool_.resize(pool_.size() + kChunk);
    next_.push_back(kNil);
  }
  if (b.count == 0) {
    b.first = c;
  } else {
    next_[b.last] = c;
  }
  b.last = c;
}

void LadderQueue::prefetch_chunk(std::uint32_t c) const {
  const Key* p = pool_.data() + std::size_t{c} * kChunk;
  for (std::uint32_t i = 0; i < kChunk; i += 4) __builtin_prefetch(p + i);  // 4 keys per cache line
}

// The links are in the small next_ array, so a second cursor can run a few
// chunks ahead of a bucket's reader and have them fetched while the current
// one is read. It starts kPrefetchChunks ahead; next() advances it by one.
class LadderQueue::ChunkPrefetcher {
 public:
  ChunkPrefetcher(const LadderQueue& q, std::uint32_t first, std::uint32_t chunks)
      : q_(q), ahead_(first), chunks_(chunks) {
    for (std::uint32_t i = 0; i < kPrefetchChunks; ++i) next();
  }
  void next() {
    if (done_ < chunks_) {
      q_.prefetch_chunk(ahead_);
      if (++done_ < chunks_) ahead_ = q_.next_[ahead_];
    }
  }

 private:
  const LadderQueue& q_;
  std::uint32_t ahead_;
  std::uint32_t done_ = 0;
  std::uint32_t chunks_;
};

template <typename F>
void LadderQueue::drain(Bucket b, F&& f) {
  const std::uint32_t nchunks = (b.count + kChunk - 1) / kChunk;
  ChunkPrefetcher prefetcher(*this, b.first, nchunks);
  std::uint32_t c = b.first;
  std::uint32_t left = b.count;
  Key buf[kChunk];
  for (std::uint32_t i = 0; i < nchunks; ++i) {
    prefetcher.next();
    const std::uint32_t n = left < kChunk ? left : kChunk;
    const Key* p = pool_.data() + std::size_t{c} * kChunk;
    std::copy(p, p + n, buf);
    left -= n;
    const std::uint32_t next = next_[c];
    next_[c] = free_head_;
    free_head_ = c;
    for (std::uint32_t j = 0; j < n; ++j) f(buf[j]);
    c = next;
  }
}

void LadderQueue::time_range(const Bucket& b, std::uint64_t& lo, std::uint64_t& hi) const {
  lo = kNoTime;
  hi = 0;
  const std::uint32_t nchunks = (b.count + kChunk - 1) / kChunk;
  ChunkPrefetcher prefetcher(*this, b.first, nchunks);
  std::uint32_t c = b.first;
  std::uint32_t left = b.count;
  for (std::uint32_t i = 0; i < nchunks; ++i) {
    prefetcher.next();
    const std::uint32_t n = left < kChunk ? left : kChunk;
    const Key* p = pool_.data() + std::size_t{c} * kChunk;
    for (std::uint32_t j = 0; j < n; ++j) {
      lo = std::min(lo, key_time(p[j]));
      hi = std::max(hi, key_time(p[j]));
    }
    left -= n;
    if (left > 0) c = next_[c];
  }
}

void LadderQueue::set_cur(Rung& g, std::uint32_t cur) {
  g.cur = cur;
  // For cur < nb the edge is at most the largest key time the rung was built
  // from, so it cannot overflow.
  g.cur_start = cur >= g.nb ? g.end : g.start + (std::uint64_t{cur} << g.shift);
}

// Buckets of width 2^shift from lo, as many as needed to cover [lo, hi] but at
// most 2^want_log2; the last one also takes [its lower edge, end).
void LadderQueue::setup_rung(Rung& g, std::uint64_t lo, std::uint64_t hi, std::uint64_t end, unsigned want_log2) {
  const std::uint64_t span1 = hi - lo;
  const auto width = static_cast<unsigned>(std::bit_width(span1));
  const unsigned shift = width > want_log2 ? width - want_log2 : 0;
  g.start = lo;
  g.shift = shift;
  g.nb = static_cast<std::uint32_t>((span1 >> shift) + 1);
  g.end = end;
  set_cur(g, 0);
  if (g.buckets.size() < g.nb) g.buckets.resize(g.nb);
}

// Splits bucket b (keys in [lo, hi], lo < hi; interval up to `end`) into a new
// deepest rung. Its first and last keys land in different buckets, so every
// bucket of the new rung holds fewer keys than b.
void LadderQueue::spawn(Bucket b, std::uint64_t lo, std::uint64_t hi, std::uint64_t end) {
  Rung& g = rungs_[nrungs_++];
  setup_rung(g, lo, hi, end, buckets_log2(b.count, kLeafTarget, kMaxBucketsLog2));
  drain(b, [&](Key k) { push_to(g.buckets[g.index(key_time(k))], k); });
}

// Sorts Bottom from `from` on. Those keys came from one bucket or from Top, so
// keys of equal time among them are in insertion order already.
void LadderQueue::sort_bottom_tail(std::size_t from) {
  Key* first = bottom_.data() + from;
  Key* last = bottom_.data() + bottom_.size();
  const auto n = static_cast<std::size_t>(last - first);
  if (n <= 1) return;
  if (n <= kRankSortMax) {
    std::uint64_t lo = key_time(*first);
    std::uint64_t hi = lo;
    for (const Key* p = first + 1; p < last; ++p) {
      lo = std::min(lo, key_time(*p));
      hi = std::max(hi, key_time(*p));
    }
    if (hi - lo < (std::uint64_t{1} << (32 - kRankSortBits))) {
      if (n <= 8) {
        rank_sort<8>(first, n, lo);
      } else if (n <= 16) {
        rank_sort<16>(first, n, lo);
      } else {
        rank_sort<kRankSortMax>(first, n, lo);
      }
      return;
    }
  }
  // Wide spreads, one-time buckets (already sorted) and, past the rung limit,
  // large buckets.
  if (!std::is_sorted(first, last)) std::sort(first, last);
}

void LadderQueue::bucket_to_bottom(Bucket b) {
  const std::size_t from = bottom_.size();
  bottom_.resize(from + b.count);
  std::size_t out = from;
  drain(b, [&](Key k) { bottom_[out++] = k; });
  sort_bottom_tail(from);
}

// Called with no rungs: Top's keys all come after Bottom's.
void LadderQueue::transfer_top() {
  if (top_.size() <= kSpawnThreshold || top_min_ == top_max_) {
    // Few keys, or all of one time: straight to Bottom, which then holds
    // everything before top_max + 1.
    const std::size_t from = bottom_.size();
    bottom_.insert(bottom_.end(), top_.begin(), top_.end());
    sort_bottom_tail(from);
    top_start_ = top_max_ + 1;
  } else {
    Rung& g = rungs_[nrungs_++];
    setup_rung(g, top_min_, top_max_, 0, buckets_log2(top_.size(), kTopPerBucket, kMaxBucketsLog2));
    g.end = saturated_edge(g.start, g.nb, g.shift);
    top_start_ = g.end;
    for (const Key k : top_) push_to(g.buckets[g.index(key_time(k))], k);
  }
  top_.clear();
  top_min_ = kNoTime;
  top_max_ = 0;
}

// Moves keys into Bottom until it holds kLookahead of them or everything.
void LadderQueue::refill() {
  if (bhead_ > 0) {
    bottom_.erase(bottom_.begin(), bottom_.begin() + static_cast<std::ptrdiff_t>(bhead_));
    bhead_ = 0;
  }
  while (bottom_.size() < kLookahead) {
    if (nrungs_ == 0) {
      if (top_.empty()) return;
      transfer_top();
      continue;
    }
    Rung& g = rungs_[nrungs_ - 1];
    std::uint32_t c = g.cur;
    while (c < g.nb && g.buckets[c].count == 0) ++c;
    if (c == g.nb) {
      // Exhausted: its interval passes to Bottom (the rung above, if any,
      // already starts where this one ends).
      --nrungs_;
      continue;
    }
    const Bucket b = g.buckets[c];
    g.buckets[c] = Bucket{};
    set_cur(g, c + 1);  // g.cur_start is now the upper edge of bucket c
    if (b.count > kSpawnThreshold && nrungs_ < kMaxRungs) {
      std::uint64_t lo = 0;
      std::uint64_t hi = 0;
      time_range(b, lo, hi);
      if (lo < hi) {
        spawn(b, lo, hi, g.cur_start);
        continue;
      }
    }
    bucket_to_bottom(b);
  }
}

// Turns a long Bottom with at least two distinct times into a new deepest rung.
bool LadderQueue::bottom_to_rung() {
  if (nrungs_ == kMaxRungs) return false;
  const std::uint64_t lo = key_time(bottom_[bhead_]);
  const std::uint64_t hi = key_time(bottom_.back());
  if (lo == hi) return false;
  const std::uint64_t end = bottom_end();
  Rung& g = rungs_[nrungs_++];
  setup_rung(g, lo, hi, end, buckets_log2(bottom_.size() - bhead_, kLeafTarget, kMaxBucketsLog2));
  for (std::size_t i = bhead_; i < bottom_.size(); ++i) push_to(g.buckets[g.index(key_time(bottom_[i]))], bottom_[i]);
  bottom_.clear();
  bhead_ = 0;
  return true;
}

// Keys land here only when they are due before everything on the ladder: often
// while the queue is short, rarely once it is long.
void LadderQueue::bottom_insert(Key k) {
  if (bottom_.size() == bottom_.capacity() && bhead_ >= bottom_.size() / 2) {
    // Reclaim the consumed front instead of growing (Bottom can hold the
    // whole queue for a long time, and then is never refilled).
    bottom_.erase(bottom_.begin(), bottom_.begin() + static_cast<std::ptrdiff_t>(bhead_));
    bhead_ = 0;
  }
  const std::size_t n = bottom_.size() - bhead_;
  if (n == 0 || bottom_.back() < k) {
    bottom_.push_back(k);
    return;
  }
  const std::uint64_t t = key_time(k);
  if (n <= kSmallBottom) {
    // Insertion from the back. k is larger than every key pushed before, so
    // it goes after every key of its own time: comparing times is enough.
    bottom_.push_back(k);
    Key* first = bottom_.data() + bhead_;
    Key* p = bottom_.data() + bottom_.size() - 1;
    for (; p > first && key_time(*(p - 1)) > t; --p) *p = *(p - 1);
    *p = k;
    return;
  }
  Key* first = bottom_.data() + bhead_;
  Key* last = bottom_.data() + bottom_.size();
  const Key* pos = std::upper_bound(first, last, k);
  const auto before = static_cast<std::size_t>(pos - first);
  const auto after = static_cast<std::size_t>(last - pos);
  if (std::min(before, after) > kBottomShiftLimit && bottom_to_rung()) {
    route(k);
    return;
  }
  if (before < after && (bhead_ > 0 || after > kBottomShiftLimit)) {
    // Shift the keys before k into the consumed front, making room there
    // first if there is none (once per size doubling, so keys that keep
    // arriving early in a long Bottom cost O(1) amortized).
    if (bhead_ == 0) {
      // Spare capacity too, so that reclaiming the front (above) does not
      // undo this at the next push.
      const std::size_t room = bottom_.size();
      bottom_.reserve(4 * room);
      bottom_.insert(bottom_.begin(), room, Key{0});
      bhead_ = room;
    }
    Key* f = bottom_.data() + bhead_;
    std::move(f, f + before, f - 1);
    --bhead_;
    bottom_[bhead_ + before] = k;
    return;
  }
  bottom_.insert(bottom_.begin() + static_cast<std::ptrdiff_t>(bhead_ + before), k);
}

}  // namespace moesim
