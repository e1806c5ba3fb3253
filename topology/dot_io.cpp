#include "topology/dot_io.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <ostream>
#include <sstream>
#include <utility>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/graphviz.hpp>

#include "sim/options.hpp"  // InputError
#include "sim/unit_parse.hpp"
#include "topology/builders.hpp"  // default_link_latency

namespace moesim {
namespace {

// ---------------------------------------------------------------- writing --

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string format_exact(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Prefer the shortest fixed-point text that reads back to the same double.
  if (std::fabs(v) < 1e15) {
    for (int decimals = 0; decimals <= 17; ++decimals) {
      char shorter[64];
      std::snprintf(shorter, sizeof shorter, "%.*f", decimals, v);
      if (std::strtod(shorter, nullptr) == v) return shorter;
    }
  }
  return buf;
}

// A bandwidth text that parse_bandwidth reads back to the same double: GB/s
// when that is exact (the common case), otherwise plain bytes per second.
std::string bandwidth_text(Bandwidth bw) {
  const double v = bw.bytes_per_second();
  const std::string gb = format_exact(v / 1e9);
  if (std::strtod(gb.c_str(), nullptr) * 1e9 == v) return gb + "GB/s";
  return format_exact(v) + "B/s";
}

std::string latency_text(Duration d) {
  const std::int64_t ps = d.count_ps();
  if (ps % 1'000'000 == 0) return std::to_string(ps / 1'000'000) + "us";
  if (ps % 1'000 == 0) return std::to_string(ps / 1'000) + "ns";
  return std::to_string(ps) + "ps";
}

const char* shape_of(VertexKind k) {
  switch (k) {
    case VertexKind::kGpu: return "box";
    case VertexKind::kNvSwitch: return "hexagon";
    case VertexKind::kNic: return "ellipse";
    case VertexKind::kLeafSwitch:
    case VertexKind::kTorSwitch:
    case VertexKind::kSpineSwitch: return "octagon";
  }
  return "ellipse";
}

const char* color_of(LinkClass c) {
  switch (c) {
    case LinkClass::kNvLink: return "darkgreen";
    case LinkClass::kPcie: return "gray40";
    case LinkClass::kNic: return "blue";
    case LinkClass::kFabric: return "red";
  }
  return "black";
}

// ---------------------------------------------------------------- reading --

struct DotNode {
  std::string id, kind, server, node, gpu;
};
struct DotEdge {
  std::string bandwidth, latency, cls, duplex;
};
using DiGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, DotNode, DotEdge>;
using UnGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS, DotNode, DotEdge>;

struct ParsedEdge {
  std::size_t from, to;
  DotEdge attrs;
};

struct Parsed {
  bool directed = true;
  std::vector<DotNode> nodes;
  std::vector<ParsedEdge> edges;
};

template <class Graph>
void parse_into(const std::string& text, Graph& g, Parsed& out) {
  boost::dynamic_properties dp(boost::ignore_other_properties);
  dp.property("node_id", boost::get(&DotNode::id, g));
  dp.property("kind", boost::get(&DotNode::kind, g));
  dp.property("server", boost::get(&DotNode::server, g));
  dp.property("node", boost::get(&DotNode::node, g));
  dp.property("gpu", boost::get(&DotNode::gpu, g));
  dp.property("bandwidth", boost::get(&DotEdge::bandwidth, g));
  dp.property("latency", boost::get(&DotEdge::latency, g));
  dp.property("class", boost::get(&DotEdge::cls, g));
  dp.property("duplex", boost::get(&DotEdge::duplex, g));
  boost::read_graphviz(text, g, dp, "node_id");
  for (std::size_t v = 0; v < boost::num_vertices(g); ++v) out.nodes.push_back(g[v]);
  for (auto [it, end] = boost::edges(g); it != end; ++it) {
    out.edges.push_back(ParsedEdge{boost::source(*it, g), boost::target(*it, g), g[*it]});
  }
}

// "gpu2" < "gpu10": digit runs compare as numbers.
bool natural_less(const std::string& a, const std::string& b) {
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    const bool db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (da && db) {
      std::size_t ie = i;
      std::size_t je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie])) != 0) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je])) != 0) ++je;
      std::string na = a.substr(i, ie - i);
      std::string nb = b.substr(j, je - j);
      na.erase(0, std::min(na.find_first_not_of('0'), na.size()));
      nb.erase(0, std::min(nb.find_first_not_of('0'), nb.size()));
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  if ((a.size() - i) != (b.size() - j)) return (a.size() - i) < (b.size() - j);
  return a < b;
}

bool ends_without_unit(const std::string& text) {
  const auto last = text.find_last_not_of(" \t");
  if (last == std::string::npos) return true;
  const char c = text[last];
  return std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '.';
}

std::int64_t parse_index(const std::string& text, const std::string& what) {
  try {
    const std::int64_t v = parse_int(text);
    if (v < 0 || v > 1'000'000'000) throw ParseError("out of range");
    return v;
  } catch (const ParseError&) {
    throw InputError(what + " must be a non-negative integer, got '" + text + "'");
  }
}

bool infer_class(VertexKind a, VertexKind b, LinkClass& out) {
  auto is_switch = [](VertexKind k) {
    return k == VertexKind::kLeafSwitch || k == VertexKind::kSpineSwitch || k == VertexKind::kTorSwitch;
  };
  auto scale_up = [](VertexKind k) { return k == VertexKind::kGpu || k == VertexKind::kNvSwitch; };
  if (scale_up(a) && scale_up(b)) {
    out = LinkClass::kNvLink;
  } else if ((a == VertexKind::kGpu && b == VertexKind::kNic) || (a == VertexKind::kNic && b == VertexKind::kGpu)) {
    out = LinkClass::kPcie;
  } else if ((a == VertexKind::kNic && is_switch(b)) || (is_switch(a) && b == VertexKind::kNic)) {
    out = LinkClass::kNic;
  } else if (is_switch(a) && is_switch(b)) {
    out = LinkClass::kFabric;
  } else {
    return false;
  }
  return true;
}

struct UnionFind {
  std::vector<std::size_t> parent;
  explicit UnionFind(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), std::size_t{0}); }
  std::size_t find(std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(std::size_t a, std::size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

Topology build_from_parsed(const Parsed& p, const std::string& origin) {
  const std::size_t nv = p.nodes.size();
  const std::string arrow = p.directed ? " -> " : " -- ";
  auto node_ref = [&](std::size_t v) { return "node '" + p.nodes[v].id + "'"; };
  auto edge_ref = [&](const ParsedEdge& e) {
    return "edge '" + p.nodes[e.from].id + "'" + arrow + "'" + p.nodes[e.to].id + "'";
  };
  auto fail = [&](const std::string& msg) { throw InputError(origin + ": " + msg); };

  // Kinds.
  std::vector<VertexKind> kind(nv);
  std::vector<std::size_t> gpus;
  for (std::size_t v = 0; v < nv; ++v) {
    const DotNode& n = p.nodes[v];
    if (n.kind.empty()) {
      fail(node_ref(v) + " has no kind attribute (set kind=gpu, nvswitch, nic, leaf, spine or tor; a node first named "
                         "in an edge needs its own node statement)");
    }
    if (!parse_vertex_kind(n.kind, kind[v])) {
      fail(node_ref(v) + " has unknown kind '" + n.kind + "' (use gpu, nvswitch, nic, leaf, spine or tor)");
    }
    if (kind[v] == VertexKind::kGpu) gpus.push_back(v);
  }
  if (gpus.empty()) fail("the graph has no GPU (declare vertices with kind=gpu)");

  // Edges: bandwidth, latency, class.
  struct Link {
    std::size_t from, to;
    Bandwidth bw;
    Duration latency;
    LinkClass cls;
    bool duplex;
  };
  std::vector<Link> links;
  links.reserve(p.edges.size());
  for (const ParsedEdge& e : p.edges) {
    if (e.from == e.to) fail(edge_ref(e) + " is a self loop (remove it)");
    const DotEdge& a = e.attrs;
    LinkClass cls = LinkClass::kNvLink;
    if (a.cls.empty()) {
      if (!infer_class(kind[e.from], kind[e.to], cls)) {
        fail(edge_ref(e) + " joins a " + std::string(to_string(kind[e.from])) + " and a " +
             std::string(to_string(kind[e.to])) + ": set its class (nvlink, pcie, nic or fabric)");
      }
    } else if (!parse_link_class(a.cls, cls)) {
      fail(edge_ref(e) + " has unknown class '" + a.cls + "' (use nvlink, pcie, nic or fabric)");
    }
    if (a.bandwidth.empty()) {
      fail(edge_ref(e) + " has no bandwidth (add e.g. bandwidth=\"450GB/s\" or bandwidth=\"400Gbps\")");
    }
    Bandwidth bw;
    try {
      bw = parse_bandwidth(a.bandwidth);
    } catch (const ParseError& err) {
      fail(edge_ref(e) + ": " + err.what());
    }
    if (ends_without_unit(a.bandwidth)) {
      fail(edge_ref(e) + ": bandwidth '" + a.bandwidth + "' needs a unit (e.g. \"450GB/s\", \"400Gbps\")");
    }
    Duration lat = default_link_latency(cls);
    if (!a.latency.empty()) {
      try {
        lat = parse_duration(a.latency);
      } catch (const ParseError& err) {
        fail(edge_ref(e) + ": " + err.what());
      }
      if (ends_without_unit(a.latency)) {
        fail(edge_ref(e) + ": latency '" + a.latency + "' needs a unit (e.g. \"500ns\", \"1us\")");
      }
    }
    bool duplex = !p.directed;
    if (!a.duplex.empty()) {
      try {
        duplex = duplex || parse_bool(a.duplex);
      } catch (const ParseError&) {
        fail(edge_ref(e) + ": duplex must be true or false, got '" + a.duplex + "'");
      }
    }
    links.push_back(Link{e.from, e.to, bw, lat, cls, duplex});
  }

  // GPU numbering.
  std::size_t with_gpu_attr = 0;
  for (const std::size_t v : gpus) with_gpu_attr += p.nodes[v].gpu.empty() ? 0U : 1U;
  std::vector<std::size_t> gpu_order(gpus.size(), nv);
  if (with_gpu_attr == gpus.size()) {
    for (const std::size_t v : gpus) {
      const auto k = parse_index(p.nodes[v].gpu, origin + ": " + node_ref(v) + ": attribute gpu");
      if (static_cast<std::size_t>(k) >= gpus.size()) {
        fail(node_ref(v) + " has gpu=" + p.nodes[v].gpu + " but the graph has " + std::to_string(gpus.size()) +
             " GPUs (number them 0.." + std::to_string(gpus.size() - 1) + ")");
      }
      if (gpu_order[static_cast<std::size_t>(k)] != nv) {
        fail(node_ref(v) + " and " + node_ref(gpu_order[static_cast<std::size_t>(k)]) + " both have gpu=" +
             p.nodes[v].gpu + " (each GPU needs its own number)");
      }
      gpu_order[static_cast<std::size_t>(k)] = v;
    }
  } else if (with_gpu_attr == 0) {
    gpu_order = gpus;
    std::sort(gpu_order.begin(), gpu_order.end(),
              [&](std::size_t a, std::size_t b) { return natural_less(p.nodes[a].id, p.nodes[b].id); });
  } else {
    for (const std::size_t v : gpus) {
      if (p.nodes[v].gpu.empty()) {
        fail(node_ref(v) + " has no gpu attribute but other GPUs do (give every GPU a gpu number, or none)");
      }
    }
  }

  // Servers.
  auto server_text = [&](std::size_t v) -> const std::string& {
    return p.nodes[v].server.empty() ? p.nodes[v].node : p.nodes[v].server;
  };
  std::vector<std::int64_t> raw_server(nv, -1);
  for (std::size_t v = 0; v < nv; ++v) {
    if (!server_text(v).empty()) raw_server[v] = parse_index(server_text(v), origin + ": " + node_ref(v) + ": attribute server");
  }
  std::size_t with_server = 0;
  for (const std::size_t v : gpus) with_server += raw_server[v] >= 0 ? 1U : 0U;
  std::vector<std::int32_t> server(nv, -1);
  if (with_server == gpus.size()) {
    std::map<std::int64_t, std::int32_t> dense;  // servers renumbered 0..k-1 in ascending order
    for (const std::size_t v : gpus) dense.emplace(raw_server[v], 0);
    std::int32_t next = 0;
    for (auto& [k, d] : dense) d = next++;
    for (std::size_t v = 0; v < nv; ++v) {
      const auto it = dense.find(raw_server[v]);
      if (it != dense.end()) server[v] = it->second;
    }
  } else if (with_server == 0) {
    // Servers = groups of GPUs joined by scale-up (nvlink-class) links,
    // directly or through NVSwitches, numbered in GPU order.
    UnionFind uf(nv);
    for (const Link& l : links) {
      auto scale_up = [&](std::size_t v) { return kind[v] == VertexKind::kGpu || kind[v] == VertexKind::kNvSwitch; };
      if (l.cls == LinkClass::kNvLink && scale_up(l.from) && scale_up(l.to)) uf.unite(l.from, l.to);
    }
    std::map<std::size_t, std::int32_t> group_server;
    for (const std::size_t v : gpu_order) {
      const auto [it, inserted] = group_server.emplace(uf.find(v), static_cast<std::int32_t>(group_server.size()));
      (void)inserted;
      server[v] = it->second;
    }
    for (std::size_t v = 0; v < nv; ++v) {
      if (kind[v] == VertexKind::kNvSwitch) {
        const auto it = group_server.find(uf.find(v));
        if (it != group_server.end()) server[v] = it->second;
      }
    }
    for (std::size_t v = 0; v < nv; ++v) {
      if (raw_server[v] >= 0) {
        fail(node_ref(v) + " has a server attribute but no GPU has one (give every GPU its server, or none)");
      }
    }
  } else {
    for (const std::size_t v : gpus) {
      if (raw_server[v] < 0) {
        fail(node_ref(v) + " has no server attribute but other GPUs do (give every GPU its server, or none)");
      }
    }
  }
  // A NIC without a server belongs to the server of a GPU it is linked to.
  for (const Link& l : links) {
    if (kind[l.from] == VertexKind::kNic && server[l.from] < 0 && kind[l.to] == VertexKind::kGpu) server[l.from] = server[l.to];
    if (kind[l.to] == VertexKind::kNic && server[l.to] < 0 && kind[l.from] == VertexKind::kGpu) server[l.to] = server[l.from];
  }

  // Vertices: GPUs first in GPU order, then the others in natural name order.
  std::vector<std::size_t> order = gpu_order;
  std::vector<std::size_t> others;
  for (std::size_t v = 0; v < nv; ++v) {
    if (kind[v] != VertexKind::kGpu) others.push_back(v);
  }
  std::sort(others.begin(), others.end(),
            [&](std::size_t a, std::size_t b) { return natural_less(p.nodes[a].id, p.nodes[b].id); });
  order.insert(order.end(), others.begin(), others.end());

  Topology t;
  t.name = origin;
  t.source = "GraphViz file " + origin;
  std::vector<VertexId> id(nv, -1);
  for (const std::size_t v : order) id[v] = t.add_vertex(VertexInfo{kind[v], p.nodes[v].id, server[v], -1});
  for (const Link& l : links) {
    if (l.duplex) {
      t.add_duplex(id[l.from], id[l.to], l.bw, l.latency, l.cls);
    } else {
      t.add_link(id[l.from], id[l.to], l.bw, l.latency, l.cls);
    }
  }
  t.validate(origin);
  return t;
}

}  // namespace

void write_dot(const Topology& t, std::ostream& out) {
  out << "// moesim cluster topology";
  if (!t.name.empty()) out << " '" << t.name << "'";
  out << ": " << t.gpu_count() << " GPUs, " << t.node_count() << (t.node_count() == 1 ? " server, " : " servers, ") << t.link_count()
      << " directed links.\n"
      << "// Draw: dot -Tpng file.dot -o file.png (large clusters: sfdp). Read back: moesim topology file.dot\n"
      << "digraph " << quote(t.name.empty() ? "topology" : t.name) << " {\n"
      << "  graph [rankdir=TB, splines=true, overlap=false];\n";
  for (std::size_t v = 0; v < t.vertex_count(); ++v) {
    const VertexInfo& info = t.vertex(static_cast<VertexId>(v));
    out << "  " << quote(info.name) << " [kind=" << to_string(info.kind);
    if (info.node >= 0) out << ", server=" << info.node;
    if (info.kind == VertexKind::kGpu) out << ", gpu=" << info.gpu;
    out << ", shape=" << shape_of(info.kind) << "];\n";
  }
  // A link followed by its reverse twin (same rate, latency, class), as
  // add_duplex makes them, is written as one `duplex=true, dir=both` edge: the
  // drawing stays readable and reading it back gives the same two links.
  const std::size_t nl = t.link_count();
  for (std::size_t l = 0; l < nl; ++l) {
    const LinkInfo& li = t.link(static_cast<LinkId>(l));
    bool duplex = false;
    if (l + 1 < nl) {
      const LinkInfo& next = t.link(static_cast<LinkId>(l + 1));
      duplex = next.from == li.to && next.to == li.from && next.link_class == li.link_class &&
               next.latency == li.latency && next.bandwidth.bytes_per_second() == li.bandwidth.bytes_per_second();
    }
    out << "  " << quote(t.vertex(li.from).name) << " -> " << quote(t.vertex(li.to).name)
        << " [bandwidth=" << quote(bandwidth_text(li.bandwidth)) << ", latency=" << quote(latency_text(li.latency))
        << ", class=" << to_string(li.link_class);
    if (duplex) out << ", duplex=true, dir=both";
    out << ", color=" << color_of(li.link_class) << "];\n";
    if (duplex) ++l;
  }
  out << "}\n";
}

Topology read_dot_text(const std::string& text, const std::string& origin) {
  Parsed parsed;
  try {
    try {
      DiGraph g;
      parse_into(text, g, parsed);
      parsed.directed = true;
    } catch (const boost::undirected_graph_error&) {
      parsed = Parsed{};
      UnGraph g;
      parse_into(text, g, parsed);
      parsed.directed = false;
    }
  } catch (const boost::bad_graphviz_syntax& e) {
    std::string msg = origin + ": GraphViz syntax error: " + e.what();
    if (msg.find("'node'") != std::string::npos) {
      msg += " (`node` is a DOT keyword: write the server index as server=N, or quote it: \"node\"=N)";
    }
    throw InputError(msg);
  } catch (const boost::graph_exception& e) {
    throw InputError(origin + ": cannot read the graph: " + e.what());
  } catch (const boost::bad_lexical_cast& e) {
    throw InputError(origin + ": bad attribute value: " + e.what());
  }
  // Node names must be unique; Boost merges repeated names, so nothing to check.
  return build_from_parsed(parsed, origin);
}

Topology read_dot(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open topology file '" + path + "' (check the path; DOT files end in .dot)");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError("cannot read topology file '" + path + "'");
  return read_dot_text(ss.str(), path);
}

}  // namespace moesim
