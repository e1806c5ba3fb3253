#include "workloads/routing.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>

#include "sim/options.hpp"

namespace moesim {

// ---- trace file --------------------------------------------------------------

class RoutingTrace {
 public:
  enum class Kind : std::uint8_t { kPerToken, kCounts };
  struct Layer {
    std::vector<std::int32_t> experts;  // per token: k ids each (kPerToken)
    std::vector<double> weights;        // per expert (kCounts)
  };

  RoutingTrace(const std::string& path, std::int64_t experts, std::int64_t top_k) : path_(path) {
    std::ifstream in(path);
    if (!in) {
      throw InputError("routing.trace: cannot open '" + path + "' (no such file or not readable)");
    }
    std::string line;
    std::size_t line_no = 0;
    bool have_header = false;
    while (std::getline(in, line)) {
      ++line_no;
      const std::string where = path + ":" + std::to_string(line_no);
      const std::string t = trim(line);
      if (t.empty() || t[0] == '#') continue;
      std::vector<std::string> cells = split(t);
      if (!have_header) {
        std::vector<std::string> low;
        for (const auto& c : cells) low.push_back(lower(c));
        if (low.size() >= 3 && low[0] == "layer" && low[1] == "token") {
          kind_ = Kind::kPerToken;
        } else if (low.size() == 3 && low[0] == "layer" && low[1] == "expert" && low[2] == "count") {
          kind_ = Kind::kCounts;
        } else {
          throw InputError(where + ": routing trace header must be 'layer,token,experts' (per-token rows "
                           "L,t,e1,...,ek) or 'layer,expert,count' (per-expert counts), got '" + t + "'");
        }
        have_header = true;
        continue;
      }
      std::vector<std::int64_t> v;
      for (const auto& c : cells) {
        char* end = nullptr;
        const long long x = std::strtoll(c.c_str(), &end, 10);
        if (c.empty() || end == nullptr || *end != '\0') {
          throw InputError(where + ": '" + c + "' is not an integer (row '" + t + "')");
        }
        v.push_back(static_cast<std::int64_t>(x));
      }
      if (v[0] < 0) throw InputError(where + ": negative layer " + std::to_string(v[0]));
      Layer& layer = layers_[v[0]];
      if (kind_ == Kind::kPerToken) {
        const auto k = static_cast<std::int64_t>(v.size()) - 2;
        if (k != top_k) {
          throw InputError(where + ": row has " + std::to_string(k) + " expert ids but the model's top_k is " +
                           std::to_string(top_k) + " (rows are layer,token,e1,...,ek)");
        }
        for (std::size_t i = 2; i < v.size(); ++i) {
          if (v[i] < 0 || v[i] >= experts) {
            throw InputError(where + ": expert id " + std::to_string(v[i]) + " out of range [0, " +
                             std::to_string(experts) + ")");
          }
          for (std::size_t j = 2; j < i; ++j) {
            if (v[j] == v[i]) {
              throw InputError(where + ": expert " + std::to_string(v[i]) + " appears twice in one token's row");
            }
          }
          layer.experts.push_back(static_cast<std::int32_t>(v[i]));
        }
      } else {
        if (v.size() != 3) throw InputError(where + ": expected 3 cells layer,expert,count, got " + std::to_string(v.size()));
        if (v[1] < 0 || v[1] >= experts) {
          throw InputError(where + ": expert id " + std::to_string(v[1]) + " out of range [0, " +
                           std::to_string(experts) + ")");
        }
        if (v[2] < 0) throw InputError(where + ": negative count " + std::to_string(v[2]));
        if (layer.weights.empty()) layer.weights.assign(static_cast<std::size_t>(experts), 0.0);
        layer.weights[static_cast<std::size_t>(v[1])] += static_cast<double>(v[2]);
      }
    }
    if (!have_header || layers_.empty()) {
      throw InputError("routing.trace: '" + path + "' holds no routing rows (expected a header then rows)");
    }
    for (const auto& [id, layer] : layers_) {
      if (kind_ == Kind::kCounts &&
          std::accumulate(layer.weights.begin(), layer.weights.end(), 0.0) <= 0.0) {
        throw InputError("routing.trace: '" + path + "': every count of layer " + std::to_string(id) + " is 0");
      }
      order_.push_back(id);
    }
    k_ = top_k;
  }

  [[nodiscard]] Kind kind() const { return kind_; }
  [[nodiscard]] std::int64_t top_k() const { return k_; }

  /// The trace layer used for model layer `layer` (see routing.hpp).
  [[nodiscard]] const Layer& layer_for(std::int64_t layer, std::int64_t dense_layers) const {
    const auto it = layers_.find(layer);
    if (it != layers_.end()) return it->second;
    const std::int64_t moe_index = layer >= dense_layers ? layer - dense_layers : layer;
    const auto n = static_cast<std::int64_t>(order_.size());
    return layers_.at(order_[static_cast<std::size_t>(moe_index % n)]);
  }

 private:
  static std::string trim(const std::string& s) {
    std::size_t a = 0;
    std::size_t b = s.size();
    while (a < b && std::isspace(static_cast<unsigned char>(s[a])) != 0) ++a;
    while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1])) != 0) --b;
    return s.substr(a, b - a);
  }
  static std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  }
  static std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
      const std::size_t c = s.find(',', pos);
      out.push_back(trim(s.substr(pos, c == std::string::npos ? std::string::npos : c - pos)));
      pos = c == std::string::npos ? s.size() + 1 : c + 1;
    }
    return out;
  }

  std::string path_;
  Kind kind_ = Kind::kPerToken;
  std::int64_t k_ = 0;
  std::map<std::int64_t, Layer> layers_;
  std::vector<std::int64_t> order_;
};

namespace {

// Vose's alias method: O(E) set-up, O(1) per draw (Vose 1991, "A linear
// algorithm for generating random numbers with a given distribution"). One
// 64-bit draw per sample: the high 32 bits pick the column (multiply-shift),
// the low 32 bits are compared with the column's integer threshold.
class AliasTable {
 public:
  explicit AliasTable(const std::vector<double>& weights)
      : threshold_(weights.size()), alias_(weights.size()), n_(weights.size()) {
    const std::size_t n = weights.size();
    const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    std::vector<double> scaled(n);
    std::vector<double> prob(n, 1.0);
    std::vector<std::uint32_t> small;
    std::vector<std::uint32_t> large;
    for (std::size_t i = 0; i < n; ++i) {
      alias_[i] = static_cast<std::uint32_t>(i);
      scaled[i] = weights[i] * static_cast<double>(n) / total;
      (scaled[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
    }
    while (!small.empty() && !large.empty()) {
      const std::uint32_t s = small.back();
      small.pop_back();
      const std::uint32_t l = large.back();
      prob[s] = scaled[s];
      alias_[s] = l;
      scaled[l] = (scaled[l] + scaled[s]) - 1.0;
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    // Columns left in either list keep probability 1 (rounding leftovers).
    for (std::size_t i = 0; i < n; ++i) {
      threshold_[i] = static_cast<std::uint64_t>(std::ldexp(std::clamp(prob[i], 0.0, 1.0), 32));
    }
  }

  std::uint32_t draw(RandomStream& rng) const {
    const std::uint64_t r = rng();
    const auto i = static_cast<std::size_t>(((r >> 32) * n_) >> 32);
    // Branch-free select: the comparison is close to a coin flip for skewed
    // weights, and a mispredicted branch would double the cost of a draw.
    const std::uint32_t keep = 0U - static_cast<std::uint32_t>((r & 0xffffffffULL) < threshold_[i]);
    return (static_cast<std::uint32_t>(i) & keep) | (alias_[i] & ~keep);
  }

 private:
  std::vector<std::uint64_t> threshold_;  // P(column keeps i) x 2^32
  std::vector<std::uint32_t> alias_;
  std::uint64_t n_;
};

// Fisher-Yates permutation of 0..n-1.
std::vector<std::int32_t> permutation(std::int64_t n, RandomStream rng) {
  std::vector<std::int32_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(i + 1)));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

// Per-token sampler of k distinct experts by successive sampling without
// replacement: each pick is proportional to the weights of the experts the
// token does not have yet (the Plackett-Luce / Gumbel-top-k law of a noisy
// top-k router). While at least half of the weight is still free, a pick
// first tries two alias draws from all weights, rejecting experts the token
// already has (exact: an accepted draw follows the remaining weights). After
// two rejections, or when the token already holds most of the weight (heavy
// experts), it samples the remaining weights exactly instead, split in two parts: the `head` (the 2k heaviest experts,
// at least 8), scanned heaviest first, and the tail, drawn from the tail's own
// alias table with rejection (the tail has no dominant expert; after
// kMaxRejects rejections an exact scan). Which part is chosen in proportion
// to their remaining weight. Free experts whose weights are all zero are
// picked uniformly. Switching method after failed tries keeps the pick exact,
// because a rejected draw carries no information about the outcome.
class DistinctSampler {
 public:
  static constexpr int kMaxRejects = 32;

  DistinctSampler(const std::vector<double>& weights, std::int64_t k) : weights_(weights), all_(weights) {
    const std::size_t n = weights.size();
    std::vector<std::uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0U);
    // Heaviest first; ties by index so that the split is deterministic.
    std::stable_sort(order.begin(), order.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return weights[a] > weights[b]; });
    const std::size_t head = std::min<std::size_t>(n, static_cast<std::size_t>(std::max<std::int64_t>(2 * k, 8)));
    in_head_.assign(n, 0);
    for (std::size_t i = 0; i < head; ++i) {
      const std::uint32_t e = order[i];
      if (!(weights[e] > 0.0)) break;
      head_.push_back(e);
      in_head_[e] = 1;
      head_weight_ += weights[e];
    }
    std::vector<double> tail_w(n, 0.0);
    for (std::size_t e = 0; e < n; ++e) {
      if (in_head_[e] == 0 && weights[e] > 0.0) {
        tail_w[e] = weights[e];
        tail_weight_ += weights[e];
        ++tail_count_;
      }
    }
    if (tail_weight_ > 0.0) tail_alias_.emplace(tail_w);
    total_weight_ = head_weight_ + tail_weight_;
  }

  template <typename Add>
  void draw_token(RandomStream& rng, std::int64_t k, std::vector<std::uint32_t>& mark, std::uint32_t stamp,
                  Add&& add) const {
    // Weight and number of positive-weight experts still free, per part.
    double head_free = head_weight_;
    double tail_free = tail_weight_;
    auto head_left = static_cast<std::int64_t>(head_.size());
    std::int64_t tail_left = tail_count_;
    for (std::int64_t j = 0; j < k; ++j) {
      std::uint32_t e = 0;
      if (head_left + tail_left > 0) [[likely]] {
        // Alias draws succeed with probability (free weight / all weight):
        // worth trying only while most of the weight is still free.
        bool found = false;
        if (head_free + tail_free > 0.5 * total_weight_) {
          e = all_.draw(rng);
          found = mark[e] != stamp;
          if (!found) {
            e = all_.draw(rng);
            found = mark[e] != stamp;
          }
        }
        if (!found) {
          if (head_left == 0) head_free = 0.0;  // no rounding remainder may pick a taken expert
          if (tail_left == 0) tail_free = 0.0;
          // One uniform picks the part and, within the head, the expert.
          const double u = rng.uniform() * (head_free + tail_free);
          e = u < head_free ? pick_head(u, mark, stamp) : pick_tail(rng, tail_free, mark, stamp);
        }
        // Branch-free bookkeeping (whether e is in the head is a coin flip).
        const std::int64_t h = in_head_[e];
        const double w = weights_[e];
        head_free -= w * static_cast<double>(h);
        tail_free -= w * static_cast<double>(1 - h);
        head_left -= h;
        tail_left -= 1 - h;
      } else {
        e = uniform_free(rng, mark, stamp);
      }
      mark[e] = stamp;
      add(e);
    }
  }

 private:
  // `u` uniform in [0, free head weight).
  std::uint32_t pick_head(double u, const std::vector<std::uint32_t>& mark, std::uint32_t stamp) const {
    std::uint32_t last = 0;
    for (std::uint32_t e : head_) {  // heaviest first: the scan usually stops early
      if (mark[e] == stamp) continue;
      last = e;
      if (u < weights_[e]) return e;
      u -= weights_[e];
    }
    return last;  // rounding: the last free head expert
  }

  std::uint32_t pick_tail(RandomStream& rng, double tail_free, const std::vector<std::uint32_t>& mark,
                          std::uint32_t stamp) const {
    for (int rejects = 0; rejects < kMaxRejects; ++rejects) {
      const std::uint32_t e = tail_alias_->draw(rng);
      if (mark[e] != stamp) return e;
    }
    double u = rng.uniform() * tail_free;
    std::uint32_t last = 0;
    for (std::size_t e = 0; e < weights_.size(); ++e) {
      if (in_head_[e] != 0 || mark[e] == stamp || !(weights_[e] > 0.0)) continue;
      last = static_cast<std::uint32_t>(e);
      if (u < weights_[e]) return last;
      u -= weights_[e];
    }
    return last;  // rounding: the last free tail expert
  }

  static std::uint32_t uniform_free(RandomStream& rng, const std::vector<std::uint32_t>& mark, std::uint32_t stamp) {
    std::uint64_t free_count = 0;
    for (std::uint32_t m : mark) free_count += m != stamp ? 1 : 0;
    auto pick = rng.below(free_count);
    for (std::size_t e = 0; e < mark.size(); ++e) {
      if (mark[e] == stamp) continue;
      if (pick == 0) return static_cast<std::uint32_t>(e);
      --pick;
    }
    return 0;  // not reached: top_k <= experts
  }

  std::vector<double> weights_;
  AliasTable all_;
  std::vector<std::uint32_t> head_;  // heaviest positive-weight experts, heaviest first
  std::vector<std::uint8_t> in_head_;
  double head_weight_ = 0.0;
  double tail_weight_ = 0.0;
  double total_weight_ = 0.0;
  std::int64_t tail_count_ = 0;
  std::optional<AliasTable> tail_alias_;
};

std::string layer_stream(std::int64_t layer) { return "routing/layer" + std::to_string(layer); }

}  // namespace

std::string_view to_string(RoutingDistribution d) {
  switch (d) {
    case RoutingDistribution::kBalanced: return "balanced";
    case RoutingDistribution::kUniform: return "uniform";
    case RoutingDistribution::kZipf: return "zipf";
    case RoutingDistribution::kHot: return "hot";
    case RoutingDistribution::kTrace: return "trace";
  }
  return "?";
}

ExpertPlacement ExpertPlacement::contiguous(std::int64_t experts, std::int64_t ep) {
  if (experts < 1 || ep < 1) throw std::invalid_argument("ExpertPlacement::contiguous: experts and ep must be >= 1");
  ExpertPlacement p;
  p.ep = static_cast<std::int32_t>(ep);
  const std::int64_t block = (experts + ep - 1) / ep;
  p.owner.resize(static_cast<std::size_t>(experts));
  for (std::int64_t e = 0; e < experts; ++e) p.owner[static_cast<std::size_t>(e)] = static_cast<std::int32_t>(e / block);
  return p;
}

// ---- RoutingResult ----------------------------------------------------------

std::int64_t RoutingResult::assignments() const {
  return std::accumulate(expert_tokens.begin(), expert_tokens.end(), std::int64_t{0});
}

double RoutingResult::imbalance() const {
  if (expert_tokens.empty()) return 0.0;
  const std::int64_t total = assignments();
  if (total == 0) return 0.0;
  const double mean = static_cast<double>(total) / static_cast<double>(expert_tokens.size());
  return static_cast<double>(*std::max_element(expert_tokens.begin(), expert_tokens.end())) / mean;
}

std::vector<std::int64_t> RoutingResult::received_per_rank() const {
  std::vector<std::int64_t> out(static_cast<std::size_t>(ep), 0);
  for (std::int32_t s = 0; s < ep; ++s) {
    for (std::int32_t d = 0; d < ep; ++d) {
      out[static_cast<std::size_t>(d)] += rank_tokens[static_cast<std::size_t>(s * ep + d)];
    }
  }
  return out;
}

std::vector<std::int64_t> RoutingResult::local_expert_tokens(const ExpertPlacement& placement,
                                                             std::int32_t ep_rank) const {
  std::vector<std::int64_t> out;
  for (std::size_t e = 0; e < placement.owner.size() && e < expert_tokens.size(); ++e) {
    if (placement.owner[e] == ep_rank) out.push_back(expert_tokens[e]);
  }
  return out;
}

std::vector<Bytes> RoutingResult::dispatch_bytes(std::int64_t hidden, DType dtype) const {
  std::vector<Bytes> out(rank_tokens.size());
  const std::int64_t per_token = hidden * dtype_bytes(dtype);
  for (std::int32_t s = 0; s < ep; ++s) {
    for (std::int32_t d = 0; d < ep; ++d) {
      const auto i = static_cast<std::size_t>(s * ep + d);
      out[i] = s == d ? Bytes{} : Bytes(rank_tokens[i] * per_token);
    }
  }
  return out;
}

std::vector<Bytes> RoutingResult::combine_bytes(std::int64_t hidden, DType dtype) const {
  std::vector<Bytes> out(rank_tokens.size());
  const std::int64_t per_token = hidden * dtype_bytes(dtype);
  for (std::int32_t s = 0; s < ep; ++s) {
    for (std::int32_t d = 0; d < ep; ++d) {
      // Rank d returns to s what s dispatched to d.
      out[static_cast<std::size_t>(d * ep + s)] =
          s == d ? Bytes{} : Bytes(rank_tokens[static_cast<std::size_t>(s * ep + d)] * per_token);
    }
  }
  return out;
}

Bytes RoutingResult::dispatch_network_bytes(std::int64_t hidden, DType dtype) const {
  Bytes total{};
  for (const Bytes& b : dispatch_bytes(hidden, dtype)) total += b;
  return total;
}

// ---- ExpertRouter -------------------------------------------------------------

ExpertRouter::ExpertRouter(RoutingConfig config, const ModelSpec& model, RandomStreams streams)
    : config_(std::move(config)),
      experts_(model.experts),
      top_k_(model.top_k),
      dense_layers_(model.dense_layers),
      streams_(streams) {
  if (experts_ < 1 || top_k_ < 1 || top_k_ > experts_) {
    throw InputError("routing: the model needs experts >= 1 and 1 <= top_k <= experts (experts " +
                     std::to_string(experts_) + ", top_k " + std::to_string(top_k_) + ")");
  }
  if (experts_ > (std::int64_t{1} << 24)) throw InputError("routing: more than 2^24 experts per layer");
  if (!(config_.skew >= 0.0) || !std::isfinite(config_.skew)) {
    throw InputError("routing.skew must be a finite number >= 0 (is " + std::to_string(config_.skew) + ")");
  }
  if (config_.distribution == RoutingDistribution::kHot) {
    if (config_.hot_experts < 1 || config_.hot_experts > experts_) {
      throw InputError("routing.hot_experts must be between 1 and the experts per layer (" + std::to_string(experts_) +
                       "), is " + std::to_string(config_.hot_experts));
    }
    if (!(config_.hot_share >= 0.0 && config_.hot_share <= 1.0)) {
      throw InputError("routing.hot_share must be in [0, 1] (is " + std::to_string(config_.hot_share) + ")");
    }
  }
  if (!(config_.capacity_factor >= 0.0) || !std::isfinite(config_.capacity_factor)) {
    throw InputError("routing.capacity_factor must be >= 0 (0 = dropless), is " +
                     std::to_string(config_.capacity_factor));
  }
  if (config_.distribution == RoutingDistribution::kTrace) {
    if (config_.trace_path.empty()) {
      throw InputError("routing.distribution = trace needs routing.trace = <file.csv>");
    }
    trace_ = std::make_shared<const RoutingTrace>(config_.trace_path, experts_, top_k_);
  }
}

ExpertRouter::~ExpertRouter() = default;
ExpertRouter::ExpertRouter(ExpertRouter&&) noexcept = default;
ExpertRouter& ExpertRouter::operator=(ExpertRouter&&) noexcept = default;

RoutingResult ExpertRouter::route(std::int64_t layer, std::int64_t microbatch, std::int64_t tokens,
                                  const ExpertPlacement& placement) const {
  if (tokens < 0) throw std::invalid_argument("ExpertRouter::route: negative token count");
  if (layer < 0 || microbatch < 0) throw std::invalid_argument("ExpertRouter::route: negative layer or micro-batch");
  if (placement.ep < 1 || static_cast<std::int64_t>(placement.owner.size()) != experts_) {
    throw std::invalid_argument("ExpertRouter::route: placement must list an owner for each of the " +
                                std::to_string(experts_) + " experts");
  }
  for (std::int32_t o : placement.owner) {
    if (o < 0 || o >= placement.ep) throw std::invalid_argument("ExpertRouter::route: expert owner out of range");
  }

  const std::int64_t E = experts_;
  const std::int64_t k = top_k_;
  const std::int32_t ep = placement.ep;
  RoutingResult r;
  r.ep = ep;
  r.experts = static_cast<std::int32_t>(E);
  r.top_k = static_cast<std::int32_t>(k);
  r.tokens = tokens;
  r.source_tokens.assign(static_cast<std::size_t>(ep), tokens / ep);
  for (std::int64_t i = 0; i < tokens % ep; ++i) ++r.source_tokens[static_cast<std::size_t>(i)];

  // counts[src * E + e]: assignments of src's tokens to expert e, before drops.
  std::vector<std::int64_t> counts(static_cast<std::size_t>(ep * E), 0);
  auto row = [&](std::int32_t src) { return counts.data() + static_cast<std::ptrdiff_t>(src) * E; };

  std::int64_t first_token = 0;  // global index of the source rank's first token
  const RoutingDistribution dist = config_.distribution;
  if (dist == RoutingDistribution::kBalanced) {
    // Assignment a (= token x k + j) goes to expert a mod E. Expert e's share
    // of [0, A) is A / E + (e < A mod E): closed form, no per-token loop.
    for (std::int32_t src = 0; src < ep; ++src) {
      const std::int64_t a0 = first_token * k;
      const std::int64_t a1 = (first_token + r.source_tokens[static_cast<std::size_t>(src)]) * k;
      std::int64_t* c = row(src);
      for (std::int64_t e = 0; e < E; ++e) {
        const std::int64_t upto1 = a1 / E + (e < a1 % E ? 1 : 0);
        const std::int64_t upto0 = a0 / E + (e < a0 % E ? 1 : 0);
        c[e] = upto1 - upto0;
      }
      first_token += r.source_tokens[static_cast<std::size_t>(src)];
    }
  } else {
    RandomStream rng = streams_.stream(layer_stream(layer) + "/mb" + std::to_string(microbatch));
    std::vector<std::uint32_t> mark(static_cast<std::size_t>(E), 0);
    std::uint32_t stamp = 0;
    const RoutingTrace::Layer* trace_layer = trace_ ? &trace_->layer_for(layer, dense_layers_) : nullptr;

    if (dist == RoutingDistribution::kUniform) {
      // Floyd's algorithm: a uniformly random k-subset with exactly k draws.
      for (std::int32_t src = 0; src < ep; ++src) {
        std::int64_t* c = row(src);
        const std::int64_t n = r.source_tokens[static_cast<std::size_t>(src)];
        for (std::int64_t t = 0; t < n; ++t) {
          ++stamp;
          for (std::int64_t j = E - k; j < E; ++j) {
            auto e = static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(j + 1)));
            if (mark[e] == stamp) e = static_cast<std::size_t>(j);
            mark[e] = stamp;
            ++c[e];
          }
        }
      }
    } else if (dist == RoutingDistribution::kTrace && trace_->kind() == RoutingTrace::Kind::kPerToken) {
      const auto n_trace = static_cast<std::int64_t>(trace_layer->experts.size()) / k;
      const std::int64_t base = (microbatch * tokens) % n_trace;
      std::int64_t idx = base;
      for (std::int32_t src = 0; src < ep; ++src) {
        std::int64_t* c = row(src);
        const std::int64_t n = r.source_tokens[static_cast<std::size_t>(src)];
        for (std::int64_t t = 0; t < n; ++t) {
          const std::int32_t* ids = trace_layer->experts.data() + idx * k;
          for (std::int64_t j = 0; j < k; ++j) ++c[ids[j]];
          if (++idx == n_trace) idx = 0;
        }
      }
    } else {
      // Popularity weights: zipf, hot, or a counts trace.
      std::vector<double> w(static_cast<std::size_t>(E), 0.0);
      if (dist == RoutingDistribution::kTrace) {
        w = trace_layer->weights;
      } else {
        const std::vector<std::int32_t> perm = permutation(E, streams_.stream(layer_stream(layer) + "/popularity"));
        if (dist == RoutingDistribution::kZipf) {
          for (std::int64_t i = 0; i < E; ++i) {
            w[static_cast<std::size_t>(perm[static_cast<std::size_t>(i)])] =
                1.0 / std::pow(static_cast<double>(i + 1), config_.skew);
          }
        } else {  // hot
          const std::int64_t n_hot = config_.hot_experts;
          const double hot_w = config_.hot_share / static_cast<double>(n_hot);
          const double cold_w = n_hot < E ? (1.0 - config_.hot_share) / static_cast<double>(E - n_hot) : 0.0;
          for (std::int64_t i = 0; i < E; ++i) {
            w[static_cast<std::size_t>(perm[static_cast<std::size_t>(i)])] = i < n_hot ? hot_w : cold_w;
          }
        }
      }
      if (std::accumulate(w.begin(), w.end(), 0.0) <= 0.0) std::fill(w.begin(), w.end(), 1.0);
      const DistinctSampler sampler(w, k);
      for (std::int32_t src = 0; src < ep; ++src) {
        std::int64_t* c = row(src);
        const std::int64_t n = r.source_tokens[static_cast<std::size_t>(src)];
        for (std::int64_t t = 0; t < n; ++t) {
          ++stamp;
          sampler.draw_token(rng, k, mark, stamp, [c](std::uint32_t e) { ++c[e]; });
        }
      }
    }
  }

  // Capacity drops (per source rank, Megatron-Core style), then aggregate.
  r.expert_tokens.assign(static_cast<std::size_t>(E), 0);
  r.rank_tokens.assign(static_cast<std::size_t>(ep) * static_cast<std::size_t>(ep), 0);
  const bool drops = config_.drops_enabled();
  for (std::int32_t src = 0; src < ep; ++src) {
    const std::int64_t n = r.source_tokens[static_cast<std::size_t>(src)];
    std::int64_t cap = -1;
    if (drops) {
      cap = static_cast<std::int64_t>(
          std::ceil(config_.capacity_factor * static_cast<double>(n * k) / static_cast<double>(E)));
      if (src == 0) r.capacity = cap;
    }
    const std::int64_t* c = row(src);
    for (std::int64_t e = 0; e < E; ++e) {
      std::int64_t kept = c[e];
      if (cap >= 0 && kept > cap) {
        r.dropped += kept - cap;
        kept = cap;
      }
      r.expert_tokens[static_cast<std::size_t>(e)] += kept;
      r.rank_tokens[static_cast<std::size_t>(src * ep + placement.owner[static_cast<std::size_t>(e)])] += kept;
    }
  }
  return r;
}

}  // namespace moesim
